# frozen_string_literal: true

require "monitor"

# Differential conformance: each scenario is written once, against a kit of classes, and run twice: with
# the standard library's (Thread::Mutex, Thread::ConditionVariable, ::Monitor, ::MonitorMixin,
# Thread::Queue, Thread::SizedQueue) and with ours (a SizedQueue is a Queue with +max:+). A scenario
# returns a list of observations; ours must equal the standard library's one by one, and where the
# standard library raised, ours must raise an instance of that exception's class (ours subclass it).
# Each scenario names the exceptions the standard library must raise in it, so that a scenario that
# stopped exercising the misuse it is about fails instead of passing vacuously.
#
# Deliberate differences, from the API contract, are not compared: ConditionVariable#wait answers
# true/false (the stdlib's answers what Mutex#sleep does), Mutex#sleep answers the seconds slept.
RSpec.describe "Stdlib conformance" do
  kit = Struct.new(:mutex, :cond, :monitor, :mixin, :queue, :sized_queue, keyword_init: true)
  let(:kits) do
    {
      "the standard library" => kit.new(
        mutex: -> { Thread::Mutex.new }, cond: -> { Thread::ConditionVariable.new }, monitor: -> { ::Monitor.new },
        mixin: ::MonitorMixin, queue: -> { Thread::Queue.new }, sized_queue: ->(max) { Thread::SizedQueue.new(max) }
      ),
      "ProcessShared" => kit.new(
        mutex: -> { ProcessShared::Mutex.new }, cond: -> { ProcessShared::ConditionVariable.new },
        monitor: -> { ProcessShared::Monitor.new }, mixin: ProcessShared::MonitorMixin,
        queue: -> { ProcessShared::Queue.new }, sized_queue: ->(max) { ProcessShared::Queue.new(max: max) }
      )
    }
  end

  # Ruby 3.2 gave Thread::Queue#pop and SizedQueue#push a +timeout:+ (3.1 would take the Hash for
  # +non_block+): scenarios with timeouts run where the standard library has them.
  stdlib_queue_timeouts = Thread::Queue.instance_method(:pop).parameters.include?(%i[key timeout])

  # The value of the block, :self if it is +subject+, or the exception it raised.
  def observe(subject = nil)
    v = yield
    !subject.nil? && v.equal?(subject) ? :self : v
  rescue RSpec::Expectations::ExpectationNotMetError
    raise
  rescue Exception => e # -- what is observed is any exception
    e
  end

  # Waits (an upper bound, never a pause) until +thread+ sleeps in a blocking call.
  # Until `thread` blocks (and, given its queue, is counted as waiting on it: a native wait shows as
  # "sleep" from the moment it lets the GVL go, a moment before it registers).
  def until_asleep(thread, queue = nil)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
    until thread.status == "sleep" && (queue.nil? || queue.num_waiting.positive?)
      raise "#{thread.inspect} did not block" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      raise thread.value.inspect unless thread.alive?

      Thread.pass
    end
  end

  def self.scenario(title, raises: [], skip_unless: true, &body)
    it title do
      skip "not on this Ruby's standard library" unless skip_unless
      std, ours = kits.map { |_, k| instance_exec(k, &body) }
      std_raised = std.grep(Exception).map(&:class)
      expect(std_raised).to eq(raises), "the standard library raised #{std_raised} (scenario out of date?)"
      expect(ours.size).to eq(std.size)
      std.zip(ours).each_with_index do |(s, o), i|
        if s.is_a?(Exception)
          expect(o).to be_a(s.class), "observation #{i}: stdlib raised #{s.class}, ours gave #{o.inspect}"
        else
          expect(o).to eq(s), "observation #{i}: stdlib gave #{s.inspect}, ours #{o.inspect}"
        end
      end
    end
  end

  describe "Mutex" do
    scenario "lock and unlock answer self; locked? and owned? follow" do |k|
      m = k.mutex.call
      [observe(m) { m.lock }, m.locked?, m.owned?, observe(m) { m.unlock }, m.locked?, m.owned?]
    end

    scenario "a recursive lock raises ThreadError; try_lock by the owner answers false", raises: [ThreadError] do |k|
      m = k.mutex.call
      m.lock
      [observe { m.lock }, m.try_lock, m.owned?, observe(m) { m.unlock }, m.try_lock, observe(m) { m.unlock }]
    end

    scenario "unlocking an unlocked mutex raises ThreadError", raises: [ThreadError] do |k|
      m = k.mutex.call
      [observe { m.unlock }, m.locked?]
    end

    scenario "unlocking from another thread raises ThreadError and leaves it held", raises: [ThreadError] do |k|
      m = k.mutex.call
      m.lock
      other = Thread.new { [observe { m.unlock }, m.owned?, m.try_lock] }.value
      [*other, m.locked?, m.owned?, observe(m) { m.unlock }, Thread.new { m.try_lock && m.owned? }.value]
    end

    scenario "ownership is per fiber: owned? and unlock in another fiber of the owning thread",
             raises: [ThreadError] do |k|
      m = k.mutex.call
      m.lock
      in_fiber = Fiber.new { [m.owned?, m.locked?, m.try_lock, observe { m.unlock }] }.resume
      [*in_fiber, m.owned?, observe(m) { m.unlock }]
    end

    scenario "synchronize answers the block's value, unlocks when it raises, wants a block",
             raises: [IOError, ThreadError] do |k|
      m = k.mutex.call
      [m.synchronize { [m.owned?, 42] }, observe { m.synchronize { raise IOError, "in the block" } }, m.locked?,
       observe { m.synchronize }, m.locked?]
    end

    scenario "a thread waiting in lock gets it once the owner unlocks" do |k|
      m = k.mutex.call
      m.lock
      waiter = Thread.new { [observe(m) { m.lock }, m.owned?].tap { m.unlock } }
      until_asleep(waiter)
      m.unlock
      [*waiter.value, m.locked?]
    end

    scenario "sleep without holding it raises ThreadError", raises: [ThreadError] do |k|
      m = k.mutex.call
      [observe { m.sleep(0.01) }, m.locked?]
    end

    scenario "a frozen mutex still locks and unlocks" do |k|
      m = k.mutex.call.freeze
      [m.frozen?, observe(m) { m.lock }, m.owned?, observe(m) { m.unlock }, m.synchronize { :inside }]
    end
  end

  describe "ConditionVariable" do
    scenario "wait without holding the mutex raises ThreadError", raises: [ThreadError] do |k|
      m = k.mutex.call
      cv = k.cond.call
      [observe { cv.wait(m, 0.01) }, m.locked?]
    end

    scenario "signal and broadcast without a waiter answer self" do |k|
      cv = k.cond.call
      [observe(cv) { cv.signal }, observe(cv) { cv.broadcast }]
    end

    scenario "wait with a timeout comes back holding the mutex" do |k|
      m = k.mutex.call
      cv = k.cond.call
      m.synchronize do
        cv.wait(m, 0.01)
        [m.owned?, m.locked?]
      end
    end

    scenario "wait returns once signalled (or broadcast), holding the mutex" do |k|
      m = k.mutex.call
      cv = k.cond.call
      %i[signal broadcast].flat_map do |wake|
        waiter = Thread.new { m.synchronize { cv.wait(m) && m.owned? } }
        until_asleep(waiter)
        m.synchronize { cv.public_send(wake) }
        [waiter.value ? :woken_holding_it : :not_holding_it, m.locked?]
      end
    end

    scenario "a frozen condition variable still signals and waits" do |k|
      m = k.mutex.call
      cv = k.cond.call.freeze
      [cv.frozen?, observe(cv) { cv.signal }, m.synchronize do
        cv.wait(m, 0.001)
        m.owned?
      end]
    end
  end

  describe "Monitor" do
    scenario "enter and exit answer nil and re-enter; one exit too many raises ThreadError",
             raises: [ThreadError] do |k|
      mon = k.monitor.call
      [mon.enter, mon.enter, mon.mon_locked?, mon.mon_owned?, mon.exit, mon.mon_owned?, mon.exit,
       mon.mon_locked?, observe { mon.exit }]
    end

    scenario "another thread cannot exit it (ThreadError) nor try_enter it", raises: [ThreadError] do |k|
      mon = k.monitor.call
      mon.enter
      other = Thread.new { [observe { mon.exit }, mon.try_enter, mon.mon_try_enter, mon.mon_owned?] }.value
      [*other, mon.mon_owned?, mon.exit, Thread.new { mon.try_enter.tap { mon.exit } }.value]
    end

    scenario "ownership is per fiber", raises: [ThreadError] do |k|
      mon = k.monitor.call
      mon.enter
      in_fiber = Fiber.new { [mon.mon_owned?, mon.mon_locked?, mon.try_enter, observe { mon.exit }] }.resume
      [*in_fiber, mon.mon_owned?, mon.exit]
    end

    scenario "synchronize answers the block's value, nests, exits when the block raises, wants a block",
             raises: [IOError, LocalJumpError] do |k|
      mon = k.monitor.call
      [mon.synchronize { mon.mon_synchronize { :nested } }, observe { mon.synchronize { raise IOError } },
       mon.mon_locked?, observe { mon.synchronize }, mon.mon_locked?]
    end

    scenario "mon_check_owner raises ThreadError unless held", raises: [ThreadError] do |k|
      mon = k.monitor.call
      [observe { mon.mon_check_owner }, mon.synchronize { mon.mon_check_owner }]
    end

    scenario "new_cond: wait times out with false; wait, signal and broadcast want the monitor",
             raises: [ThreadError, ThreadError, ThreadError] do |k|
      mon = k.monitor.call
      cond = mon.new_cond
      [mon.synchronize { cond.wait(0.01) }, mon.synchronize { mon.synchronize { [cond.wait(0.01), mon.mon_owned?] } },
       observe { cond.wait(0.01) }, observe { cond.signal }, observe { cond.broadcast }]
    end

    scenario "new_cond: wait_until returns once the condition holds" do |k|
      mon = k.monitor.call
      cond = mon.new_cond
      ready = false
      waiter = Thread.new { mon.synchronize { [cond.wait_until { ready }, mon.mon_owned?] } }
      until_asleep(waiter)
      mon.synchronize do
        ready = true
        cond.signal
      end
      [*waiter.value, mon.mon_locked?]
    end

    scenario "a frozen monitor still synchronizes and makes conditions" do |k|
      mon = k.monitor.call.freeze
      [mon.frozen?, mon.synchronize { mon.mon_owned? }, mon.synchronize { mon.new_cond.wait(0.001) }]
    end
  end

  describe "MonitorMixin" do
    scenario "extend gives an object the mon_* methods; mon_exit and mon_check_owner unowned raise ThreadError",
             raises: [ThreadError, ThreadError] do |k|
      obj = [].extend(k.mixin)
      [obj.synchronize { obj.mon_owned? }, obj.mon_try_enter, obj.try_mon_enter, obj.mon_locked?,
       obj.mon_exit, obj.mon_exit, obj.mon_locked?, observe { obj.mon_exit }, observe do
                                                                                obj.__send__(:mon_check_owner)
                                                                              end]
    end

    scenario "include, with initialize calling super" do |k|
      klass = Class.new do
        include k.mixin

        def initialize
          super
          @items = []
        end

        def add(item)
          synchronize { @items << item }
        end
      end
      obj = klass.new
      cond = obj.new_cond
      [obj.add(1), obj.synchronize { cond.wait(0.001) }, obj.mon_locked?]
    end

    scenario "extending a frozen object raises FrozenError", raises: [FrozenError] do |k|
      [observe { Object.new.freeze.extend(k.mixin) }]
    end
  end

  describe "Queue" do
    scenario "push answers self; FIFO; size, length, empty?, clear, num_waiting" do |k|
      q = k.queue.call
      [observe(q) { q.push(1) }, observe(q) { q << [2] }, observe(q) { q.enq("three") }, q.size, q.length,
       q.empty?, q.num_waiting, q.pop, q.shift, q.deq, q.empty?, q.push(4) && observe(q) { q.clear }, q.size]
    end

    scenario "pop(true) on an empty queue raises ThreadError", raises: [ThreadError] do |k|
      q = k.queue.call
      [observe { q.pop(true) }, q.push(:x) && q.pop(true)]
    end

    scenario "a waiting pop gets what another thread pushes; num_waiting counts it" do |k|
      q = k.queue.call
      popper = Thread.new { q.pop }
      until_asleep(popper, q)
      [q.num_waiting, q.push(:hello) && popper.value, q.num_waiting]
    end

    scenario "close: push raises ClosedQueueError, pop drains, then nil; pop(true) then raises ThreadError",
             raises: [ClosedQueueError, ThreadError] do |k|
      q = k.queue.call
      q.push(:kept)
      [observe(q) { q.close }, q.closed?, observe { q.push(1) }, q.pop, q.pop, observe { q.pop(true) }, q.empty?]
    end

    scenario "close wakes a waiting pop with nil" do |k|
      q = k.queue.call
      popper = Thread.new { q.pop }
      until_asleep(popper)
      q.close
      [popper.value, q.num_waiting]
    end

    scenario "pop(timeout:) answers nil; with non_block it raises ArgumentError",
             raises: [ArgumentError], skip_unless: stdlib_queue_timeouts do |k|
      q = k.queue.call
      [q.pop(timeout: 0.01), q.pop(timeout: 0), observe { q.pop(true, timeout: 1) }, q.push(:x) && q.pop(timeout: 1)]
    end

    scenario "freeze does what this Ruby's Thread::Queue#freeze does" do |k|
      q = k.queue.call
      frozen = observe { q.freeze.frozen? }
      [frozen.is_a?(Exception) ? frozen.class.ancestors.include?(TypeError) : frozen, q.push(1) && q.pop]
    end
  end

  describe "SizedQueue (Queue with max:)" do
    scenario "max; push(obj, true) on a full queue raises ThreadError and adds nothing", raises: [ThreadError] do |k|
      q = k.sized_queue.call(2)
      [q.max, observe(q) { q.push(1, true) }, q.push(2, true) && q.size, observe { q.push(3, true) }, q.size, q.pop]
    end

    scenario "a push waiting for room goes in once there is some; num_waiting counts it" do |k|
      q = k.sized_queue.call(1)
      q.push(:first)
      pusher = Thread.new { observe(q) { q.push(:second) } }
      until_asleep(pusher, q)
      [q.num_waiting, q.pop, pusher.value, q.pop, q.num_waiting]
    end

    scenario "closed and full: push(obj, true) raises ThreadError, push ClosedQueueError; a waiting push " \
             "gets ClosedQueueError", raises: [ClosedQueueError, ThreadError, ClosedQueueError, ClosedQueueError] do |k|
      q = k.sized_queue.call(1)
      q.push(:first)
      pusher = Thread.new { observe { q.push(:second) } }
      until_asleep(pusher)
      q.close
      [pusher.value, observe { q.push(:x, true) }, observe { q.push(:x) }, q.pop, observe { q.push(:x, true) }, q.pop]
    end

    scenario "push(timeout:) on a full queue answers nil", skip_unless: stdlib_queue_timeouts do |k|
      q = k.sized_queue.call(1)
      [observe(q) { q.push(1, timeout: 0) }, q.push(2, timeout: 0.01), q.push(2, timeout: 0), q.size]
    end
  end

  # Methods the standard library's classes have and ours deliberately lack: SizedQueue#max= (the limit is
  # fixed in shared memory when the queue is made); marshal_dump (the stdlib's only raises TypeError, which
  # Marshal.dump raises for ours too: see below).
  absent = { Thread::SizedQueue => %i[max= marshal_dump], Thread::Queue => %i[marshal_dump],
             Thread::ConditionVariable => %i[marshal_dump] }
  {
    Thread::Mutex => ProcessShared::Mutex, Thread::ConditionVariable => ProcessShared::ConditionVariable,
    ::Monitor => ProcessShared::Monitor, ::MonitorMixin => ProcessShared::MonitorMixin,
    Thread::Queue => ProcessShared::Queue, Thread::SizedQueue => ProcessShared::Queue
  }.each do |std, ours|
    it "#{ours} has #{std}'s public methods public and its private ones private" do
      expect(std.public_instance_methods(false) - (absent[std] || []) - ours.public_instance_methods).to eq([])
      expect(std.private_instance_methods(false) - ours.private_instance_methods).to eq([])
    end
  end

  scenario "Marshal.dump refuses a mutex, a condition variable and a queue with TypeError",
           raises: [TypeError, TypeError, TypeError] do |k|
    [k.mutex.call, k.cond.call, k.queue.call].map { |o| observe { Marshal.dump(o) } }
  end

  it "our errors are the stdlib's: ProcessError a ThreadError, ClosedError an IOError, ClosedQueueError too" do
    expect(ProcessShared::ProcessError.ancestors).to include(ThreadError, ProcessShared::Error)
    expect(ProcessShared::ClosedError.ancestors).to include(IOError, ProcessShared::Error)
    expect(ProcessShared::ClosedQueueError.ancestors).to include(::ClosedQueueError, StopIteration)
    mutex = ProcessShared::Mutex.new
    mutex.close
    expect { mutex.lock }.to raise_error(IOError)
  end
end
