# frozen_string_literal: true

require "spec_helper"

# Issue 10, point 6. For every public method that takes a timeout, and every try_* method:
# - a timeout of 0 means "do not wait": the would-block answer, promptly;
# - a small timeout gives the same answer after about that long (never before it: a deadline on the
#   monotonic clock cannot expire early, so load can only make it later);
# - try_* without a timeout never waits, and answers "would block" (never raises) whatever the cause,
#   also when the caller itself holds what it asks for (as Thread::Mutex#try_lock answers false);
# - a negative, NaN or non-numeric timeout raises ArgumentError (API.md), before anything is taken or
#   changed (bad_input_spec.rb tries a longer list of bad values on the classes it covers);
# - with the state free, a timeout of 0 takes what it asks for.
# The would-block state is made by ANOTHER PROCESS: a forked child takes the lock or the permit, fills
# the queue, or is itself a waiter, says so over a pipe, and keeps it so until the parent says it is done;
# then it releases and checks it can carry on (its exit status fails the example otherwise).
#
# Then: interrupts. A thread blocked on a state another process holds, ended by Thread#raise or
# Thread#kill, holds exactly what it held before (no lock, permit, read lock or waiter count gained or
# lost), and the other process then proceeds normally. (interrupt_spec.rb times the same calls against
# state held in this process.)
RSpec.describe "patience: timeouts of 0, small timeouts, try_* and interrupts" do
  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  # Generous upper bound for "promptly" (the contract is "does not block"; under load a fork may lag).
  prompt = 0.5
  # A small positive timeout, and how much longer than it an answer may take.
  small = 0.2
  slack = 1.0
  bad_timeouts = [-1, -0.001, -2**70, Float::NAN, -Float::INFINITY, "1", :soon, nil.to_a, Object.new]

  # Wait, in a child, until `th` is asleep in a blocking call and `cond` holds.
  def self.asleep(th, &cond)
    sleep 0.005 until th.status == "sleep" && (cond.nil? || cond.call)
    th
  end

  # The result of a call: [:value, v] or [:raised, exception class].
  def outcome
    [:value, yield]
  rescue StandardError => e
    [:raised, e.class]
  end

  def expect_answer(got, want, what)
    if want.is_a?(Class) && want <= Exception
      expect(got[0]).to eq(:raised), "#{what}: expected #{want}, got #{got.inspect}"
      expect(got[1]).to be <= want, "#{what}: expected #{want}, got #{got.inspect}"
    else
      expect(got).to eq([:value, want]), "#{what}: expected #{want.inspect}, got #{got.inspect}"
    end
  end

  # Makes the objects, lets a child set up `hold` (released by `release` once the block has run), yields.
  def against(make, hold, release)
    o = make.call
    return yield(o) unless hold

    ready = handshake
    done = handshake
    pid = fork_child do
      st = hold.call(o)
      ready.signal
      done.wait(timeout: 30)
      release&.call(o, st)
    end
    ready.wait
    begin
      yield o
    ensure
      done.signal
      wait_child(pid)
    end
  end

  mutex = -> { { m: ProcessShared::Mutex.new } }
  sem = ->(klass) { -> { { s: klass.new(1) } } }
  rw = -> { { rw: ProcessShared::ReadWriteLock.new } }
  # Whether the calling thread holds no read lock (release_read_lock) / not the write lock of `lock`.
  # (has_waiters? is a hint that a waiter that timed out can leave set until the next release.)
  refused = lambda do |&release|
    release.call
    false
  rescue ProcessShared::ProcessError
    true
  end
  no_read = ->(lock) { refused.call { lock.release_read_lock } }
  no_write = ->(lock) { refused.call { lock.release_write_lock } }
  # A child thread waits on the queue (num_waiting 1) until the child's main thread feeds it.
  queue_waiter = lambda do |o|
    asleep(Thread.new { o[:q].pop(timeout: 30) }) { o[:q].num_waiting == 1 }
  end
  queue_fed = lambda do |o, th|
    o[:q].push(:fed)
    raise "the other waiter got #{th.value.inspect}" unless th.value == :fed
  end
  # A child thread waits on the condition variable (having released the mutex) until signalled.
  cv_waiter = lambda do |o|
    asleep(Thread.new { o[:m].synchronize { o[:cv].wait(o[:m], 30) } }) { o[:cv].waiters == 1 }
  end
  cv_signalled = lambda do |o, th|
    o[:m].synchronize { o[:cv].signal }
    raise "the other waiter got #{th.value.inspect}" unless th.value == true
  end
  mon_cond = lambda do
    mon = ProcessShared::Monitor.new
    { mon: mon, cond: mon.new_cond }
  end
  mon_cond_waiter = lambda do |o|
    th = Thread.new { o[:mon].synchronize { o[:cond].wait(30) } }
    sleep 0.005 until th.status == "sleep" && !o[:mon].mon_locked?
    th
  end
  mon_cond_signalled = lambda do |o, th|
    o[:mon].synchronize { o[:cond].signal }
    raise "the other waiter got #{th.value.inspect}" unless th.value == true
  end

  # name => {
  #   make:    -> objects (before the fork),
  #   hold:    ->(o) in the child: make the call block (returns what release needs); nil: no child,
  #   release: ->(o, st) in the child, once the parent is done,
  #   call:    ->(o, timeout) in the parent,
  #   bare:    ->(o) the call without a timeout, for try_* (never waits), with its answer bare_answer,
  #   answer:  the would-block answer (a value, or an exception class),
  #   intact:  ->(o) true if the would-block call changed nothing (checked in the parent, state still held),
  #   free:    { make:, hold:, release:, check: ->(o, result) } the state free: timeout 0 takes it,
  # }
  cases = {
    "Mutex#try_lock(timeout)" => {
      make: mutex, hold: ->(o) { o[:m].lock }, release: ->(o, _) { o[:m].unlock && o[:m].lock && o[:m].unlock },
      call: ->(o, t) { o[:m].try_lock(t) }, bare: ->(o) { o[:m].try_lock }, answer: false,
      intact: ->(o) { !o[:m].owned? && o[:m].owner_pid != Process.pid },
      free: { check: ->(o, r) { r == true && o[:m].owned? && o[:m].unlock } }
    },
    "Monitor#try_enter(timeout)" => {
      make: -> { { mon: ProcessShared::Monitor.new } }, hold: ->(o) { o[:mon].enter },
      release: ->(o, _) { o[:mon].exit },
      call: ->(o, t) { o[:mon].try_enter(t) }, bare: ->(o) { o[:mon].try_enter }, answer: false,
      intact: ->(o) { !o[:mon].mon_owned? && o[:mon].mon_count.zero? },
      free: { check: ->(o, r) { r == true && o[:mon].mon_count == 1 && (o[:mon].exit || true) } }
    },
    "Monitor#mon_try_enter(timeout)" => {
      make: -> { { mon: ProcessShared::Monitor.new } }, hold: ->(o) { o[:mon].mon_enter },
      release: ->(o, _) { o[:mon].mon_exit },
      call: ->(o, t) { o[:mon].mon_try_enter(t) }, bare: ->(o) { o[:mon].try_mon_enter }, answer: false,
      intact: ->(o) { !o[:mon].mon_owned? },
      free: { check: ->(o, r) { r == true && o[:mon].mon_owned? && (o[:mon].mon_exit || true) } }
    },
    "MonitorMixin#mon_try_enter(timeout)" => {
      make: -> { { obj: [].extend(ProcessShared::MonitorMixin) } }, hold: ->(o) { o[:obj].mon_enter },
      release: ->(o, _) { o[:obj].mon_exit },
      call: ->(o, t) { o[:obj].mon_try_enter(t) }, bare: ->(o) { o[:obj].try_mon_enter }, answer: false,
      intact: ->(o) { !o[:obj].mon_owned? },
      free: { check: ->(o, r) { r == true && o[:obj].mon_owned? && (o[:obj].mon_exit || true) } }
    },
    "Semaphore#try_wait(timeout)" => {
      make: sem.call(ProcessShared::Semaphore), hold: ->(o) { o[:s].wait }, release: ->(o, _) { o[:s].post },
      call: ->(o, t) { o[:s].try_wait(t) }, answer: Errno::ETIMEDOUT, # API.md: raises, as the seed gem's
      bare: ->(o) { o[:s].try_wait }, bare_answer: Errno::EAGAIN,
      intact: ->(o) { o[:s].value.zero? && o[:s].waiters.zero? },
      free: { check: ->(o, r) { r.nil? && o[:s].value.zero? && (o[:s].post || true) } }
    },
    "Semaphore#try_wait(timeout, undo: true)" => {
      make: sem.call(ProcessShared::Semaphore), hold: ->(o) { o[:s].wait(undo: true) },
      release: ->(o, _) { o[:s].post },
      call: ->(o, t) { o[:s].try_wait(t, undo: true) }, answer: Errno::ETIMEDOUT,
      bare: ->(o) { o[:s].try_wait(undo: true) }, bare_answer: Errno::EAGAIN,
      intact: ->(o) { o[:s].value.zero? && o[:s].waiters.zero? },
      free: { check: ->(o, r) { r.nil? && o[:s].value.zero? && (o[:s].post || true) } }
    },
    "BinarySemaphore#try_wait(timeout)" => {
      make: sem.call(ProcessShared::BinarySemaphore), hold: ->(o) { o[:s].wait }, release: ->(o, _) { o[:s].post },
      call: ->(o, t) { o[:s].try_wait(t) }, answer: Errno::ETIMEDOUT,
      bare: ->(o) { o[:s].try_wait }, bare_answer: Errno::EAGAIN,
      intact: ->(o) { o[:s].value.zero? && o[:s].waiters.zero? },
      free: { check: ->(o, r) { r.nil? && o[:s].value.zero? && (o[:s].post || true) } }
    },
    "Semaphore#to_mtx#try_lock" => {
      make: -> { { mx: ProcessShared::BinarySemaphore.new(1).to_mtx } }, hold: ->(o) { o[:mx].lock },
      release: ->(o, _) { o[:mx].unlock },
      bare: ->(o) { o[:mx].try_lock }, bare_answer: false,
      intact: ->(o) { o[:mx].locked? },
      free: { bare: true, check: ->(o, r) { r == true && o[:mx].locked? && o[:mx].unlock } }
    },
    "ReadWriteLock#try_read_lock(timeout) (another process writes)" => {
      make: rw, hold: ->(o) { o[:rw].acquire_write_lock }, release: ->(o, _) { o[:rw].release_write_lock },
      call: ->(o, t) { o[:rw].try_read_lock(t) }, bare: ->(o) { o[:rw].try_read_lock }, answer: false,
      intact: ->(o) { o[:rw].write_locked? && no_read.call(o[:rw]) && no_write.call(o[:rw]) },
      free: { check: ->(o, r) { r == true && o[:rw].release_read_lock } }
    },
    "ReadWriteLock#try_read_lock(timeout) (a writer of another process waits)" => {
      make: rw,
      hold: lambda do |o|
        o[:rw].acquire_read_lock
        asleep(Thread.new { o[:rw].acquire_write_lock && o[:rw].release_write_lock }) { o[:rw].has_waiters? }
      end,
      release: ->(o, th) { o[:rw].release_read_lock && th.join },
      call: ->(o, t) { o[:rw].try_read_lock(t) }, bare: ->(o) { o[:rw].try_read_lock }, answer: false,
      intact: ->(o) { o[:rw].write_locked? && o[:rw].has_waiters? && no_read.call(o[:rw]) }
    },
    "ReadWriteLock#try_write_lock(timeout) (another process reads)" => {
      make: rw, hold: ->(o) { o[:rw].acquire_read_lock }, release: ->(o, _) { o[:rw].release_read_lock },
      call: ->(o, t) { o[:rw].try_write_lock(t) }, bare: ->(o) { o[:rw].try_write_lock }, answer: false,
      intact: ->(o) { !o[:rw].write_locked? && !o[:rw].has_waiters? && no_write.call(o[:rw]) },
      free: { check: ->(o, r) { r == true && o[:rw].write_locked? && o[:rw].release_write_lock } }
    },
    "ReadWriteLock#try_write_lock(timeout) (another process writes)" => {
      make: rw, hold: ->(o) { o[:rw].acquire_write_lock }, release: ->(o, _) { o[:rw].release_write_lock },
      call: ->(o, t) { o[:rw].try_write_lock(t) }, bare: ->(o) { o[:rw].try_write_lock }, answer: false,
      intact: ->(o) { o[:rw].write_locked? && no_write.call(o[:rw]) && no_read.call(o[:rw]) }
    },
    "ConditionVariable#wait(Mutex, timeout) (another process waits too)" => {
      make: -> { { m: ProcessShared::Mutex.new, cv: ProcessShared::ConditionVariable.new } },
      hold: cv_waiter, release: cv_signalled,
      call: ->(o, t) { o[:m].synchronize { [o[:cv].wait(o[:m], t), o[:m].owned?] } }, answer: [false, true],
      intact: ->(o) { !o[:m].locked? && o[:cv].waiters == 1 }
    },
    "ConditionVariable#wait(Monitor, timeout)" => {
      make: -> { { mon: ProcessShared::Monitor.new, cv: ProcessShared::ConditionVariable.new } },
      call: ->(o, t) { o[:mon].synchronize { o[:mon].synchronize { [o[:cv].wait(o[:mon], t), o[:mon].mon_count] } } },
      answer: [false, 2], # held twice again
      intact: ->(o) { !o[:mon].mon_locked? && o[:cv].waiters.zero? }
    },
    "Monitor::ConditionVariable#wait(timeout) (another process waits too)" => {
      make: mon_cond, hold: mon_cond_waiter, release: mon_cond_signalled,
      call: ->(o, t) { o[:mon].synchronize { [o[:cond].wait(t), o[:mon].mon_owned?] } }, answer: [false, true],
      intact: ->(o) { !o[:mon].mon_locked? }
    },
    "Monitor#wait_for_cond(cond, timeout)" => {
      make: mon_cond,
      call: ->(o, t) { o[:mon].synchronize { [o[:mon].wait_for_cond(o[:cond], t), o[:mon].mon_owned?] } },
      answer: [false, true],
      intact: ->(o) { !o[:mon].mon_locked? }
    },
    "Mutex#sleep(timeout)" => {
      make: mutex,
      call: lambda do |o, t|
        o[:m].lock
        [o[:m].sleep(t).is_a?(Integer), o[:m].owned?]
      ensure
        o[:m].unlock if o[:m].owned?
      end,
      answer: [true, true], # Integer seconds slept (as Thread::Mutex#sleep), held again
      intact: ->(o) { !o[:m].locked? }
    },
    "Semaphore#to_mtx#sleep(timeout)" => {
      make: -> { { mx: ProcessShared::Semaphore.new(1).to_mtx } },
      call: lambda do |o, t|
        o[:mx].lock
        [o[:mx].sleep(t).is_a?(Integer), o[:mx].locked?]
      ensure
        o[:mx].unlock if o[:mx].locked?
      end,
      answer: [true, true], intact: ->(o) { !o[:mx].locked? }
    },
    "Event#wait(timeout) (another process waits too)" => {
      make: -> { { e: ProcessShared::Event.new } },
      hold: ->(o) { asleep(Thread.new { o[:e].wait(30) }) },
      release: ->(o, th) { o[:e].set && (th.value or raise "the other waiter timed out") },
      call: ->(o, t) { o[:e].wait(t) }, answer: false, intact: ->(o) { !o[:e].set? },
      free: { make: -> { { e: ProcessShared::Event.new } }, hold: ->(o) { o[:e].set },
              check: ->(_, r) { r == true } }
    },
    "CountDownLatch#wait(timeout) (another process waits too)" => {
      make: -> { { l: ProcessShared::CountDownLatch.new(1) } },
      hold: ->(o) { asleep(Thread.new { o[:l].wait(30) }) },
      release: ->(o, th) { o[:l].count_down || (th.value or raise "the other waiter timed out") },
      call: ->(o, t) { o[:l].wait(t) }, answer: false, intact: ->(o) { o[:l].count == 1 },
      free: { make: -> { { l: ProcessShared::CountDownLatch.new(1) } }, hold: ->(o) { o[:l].count_down },
              check: ->(_, r) { r == true } }
    },
    "Barrier#wait(timeout) (1 of 3 parties waits in another process)" => {
      make: -> { { b: ProcessShared::Barrier.new(3) } },
      hold: ->(o) { asleep(Thread.new { o[:b].wait(30) }) { o[:b].number_waiting == 1 } },
      # A timeout breaks the barrier (API.md): the other process's waiter is told so.
      release: ->(_, th) { th.value == false or raise "the other waiter was not told the barrier broke" },
      call: ->(o, t) { o[:b].wait(t) }, answer: false,
      intact: ->(o) { o[:b].broken? },
      # A bad timeout must not arrive at all: no waiter counted, not broken (no child: it would wait on).
      bad: { hold: nil, intact: ->(o) { o[:b].number_waiting.zero? && !o[:b].broken? } },
      free: { make: -> { { b: ProcessShared::Barrier.new(2) } },
              hold: ->(o) { asleep(Thread.new { o[:b].wait(30) }) { o[:b].number_waiting == 1 } },
              release: ->(_, th) { th.value == true or raise "the other party did not trip" },
              check: ->(o, r) { r == true && o[:b].number_waiting.zero? && !o[:b].broken? } }
    },
    "Queue#pop(timeout:) (empty; another process waits too)" => {
      make: -> { { q: ProcessShared::Queue.new(capacity: 256) } }, hold: queue_waiter, release: queue_fed,
      call: ->(o, t) { o[:q].pop(timeout: t) }, answer: nil,
      bare: ->(o) { o[:q].pop(true) }, bare_answer: ThreadError, # Thread::Queue#pop(true)
      intact: ->(o) { o[:q].empty? && o[:q].num_waiting == 1 },
      free: { make: -> { { q: ProcessShared::Queue.new(capacity: 256) } }, hold: ->(o) { o[:q].push(:item) },
              check: ->(o, r) { r == :item && o[:q].empty? } }
    },
    "Queue#push(obj, timeout:) (full: another process filled it)" => {
      make: -> { { q: ProcessShared::Queue.new(capacity: 256, max: 1) } }, hold: ->(o) { o[:q].push(:theirs) },
      release: ->(o, _) { o[:q].pop(timeout: 5) == :theirs or raise "lost the other process's element" },
      call: ->(o, t) { o[:q].push(:mine, timeout: t) }, answer: nil,
      intact: ->(o) { o[:q].size == 1 && o[:q].num_waiting.zero? },
      free: { check: ->(o, r) { r.equal?(o[:q]) && o[:q].pop(true) == :mine } }
    }
  }

  cases.each do |name, c|
    describe name do
      let(:run) do
        lambda do |how, answer, &call|
          against(c[:make], c[:hold], c[:release]) do |o|
            started = now
            got = outcome { call.call(o) }
            took = now - started
            expect_answer(got, answer, "#{name} #{how}")
            expect(c[:intact].call(o)).to be_truthy, "#{name} #{how} changed the state" if c[:intact]
            took
          end
        end
      end

      if c[:call]
        # Fails if 0 waits (for the timeout of a forever wait, or for the other process), or answers
        # anything but the would-block answer (raises, takes, or returns another value).
        [0, 0.0].each do |zero|
          it "answers #{c[:answer].inspect} at once for a timeout of #{zero.inspect}" do
            took = run.call("timeout #{zero.inspect}", c[:answer]) { |o| c[:call].call(o, zero) }
            expect(took).to be < prompt
          end
        end

        # Fails if the timeout is ignored (waits forever: the example's own deadline, or the slack),
        # or taken for "do not wait" (returns before it expired).
        it "answers #{c[:answer].inspect} after about #{small}s for a timeout of #{small}" do
          took = run.call("timeout #{small}", c[:answer]) { |o| c[:call].call(o, small) }
          expect(took).to be >= small - 0.005
          expect(took).to be < small + slack
        end

        # Fails if a bad timeout is accepted (waits, or is taken for 0/forever), raises another class, or
        # is checked only after something was taken.
        it "raises ArgumentError for bad timeouts, changing nothing" do
          bad = c.fetch(:bad, {})
          intact = bad.fetch(:intact, c[:intact])
          against(c[:make], bad.fetch(:hold, c[:hold]), c[:release]) do |o|
            bad_timeouts.each do |t|
              expect { c[:call].call(o, t) }.to raise_error(ArgumentError, /timeout/), "timeout #{t.inspect}"
            end
            expect(intact.call(o)).to be_truthy if intact
          end
        end
      end

      if c[:bare]
        answer = c.fetch(:bare_answer, c[:answer])
        # Fails if try_* without a timeout waits, or answers anything else (raises, or takes it).
        it "answers #{answer.inspect} at once without a timeout" do
          took = run.call("without a timeout", answer) { |o| c[:bare].call(o) }
          expect(took).to be < prompt
        end
      end

      if (free = c[:free])
        # Fails if timeout 0 does not try at all, or leaves what it took in a wrong state.
        it "takes it at once #{free[:bare] ? "without a timeout" : "with a timeout of 0"} when it is free" do
          against(free.fetch(:make, c[:make]), free[:hold], free[:release]) do |o|
            started = now
            r = free[:bare] ? c[:bare].call(o) : c[:call].call(o, 0)
            expect(now - started).to be < prompt
            expect(free[:check].call(o, r)).to be_truthy, "got #{r.inspect}"
          end
        end
      end
    end
  end

  # The caller itself holds what it asks for: waiting could never end, so try_* answers false at once,
  # like Thread::Mutex#try_lock for its owner (true for the re-entrant Monitor, like ::Monitor#try_enter).
  describe "try_* when the caller itself holds it" do
    it "matches Thread::Mutex#try_lock and ::Monitor#try_enter, the stdlib baselines" do
      m = Thread::Mutex.new
      m.lock
      expect(m.try_lock).to be(false)
      mon = ::Monitor.new
      mon.enter
      expect(mon.try_enter).to be(true)
    end

    self_held = {
      "Mutex#try_lock" => {
        make: -> { ProcessShared::Mutex.new.tap(&:lock) }, answer: false,
        calls: [->(x) { x.try_lock }, ->(x) { x.try_lock(0) }, ->(x) { x.try_lock(small) }],
        intact: ->(x) { x.owned? && x.unlock }
      },
      "Monitor#try_enter (re-entrant)" => {
        make: -> { ProcessShared::Monitor.new.tap(&:enter) }, answer: true,
        calls: [->(x) { x.try_enter }, ->(x) { x.try_enter(0) }, ->(x) { x.try_enter(small) }],
        intact: ->(x) { x.mon_count == 4 && 4.times { x.exit } && !x.mon_locked? }
      },
      "ReadWriteLock#try_write_lock holding a read lock" => {
        make: -> { ProcessShared::ReadWriteLock.new.tap(&:acquire_read_lock) }, answer: false,
        calls: [->(x) { x.try_write_lock }, ->(x) { x.try_write_lock(0) }, ->(x) { x.try_write_lock(small) }],
        intact: ->(x) { !x.write_locked? && x.release_read_lock && !x.has_waiters? }
      },
      "ReadWriteLock#try_write_lock holding the write lock" => {
        make: -> { ProcessShared::ReadWriteLock.new.tap(&:acquire_write_lock) }, answer: false,
        calls: [->(x) { x.try_write_lock }, ->(x) { x.try_write_lock(0) }, ->(x) { x.try_write_lock(small) }],
        intact: ->(x) { x.release_write_lock && !x.write_locked? }
      },
      "ReadWriteLock#try_read_lock holding the write lock" => {
        make: -> { ProcessShared::ReadWriteLock.new.tap(&:acquire_write_lock) }, answer: false,
        calls: [->(x) { x.try_read_lock }, ->(x) { x.try_read_lock(0) }, ->(x) { x.try_read_lock(small) }],
        intact: lambda do |x|
          x.release_write_lock && !x.write_locked? && Thread.new { x.try_write_lock && x.release_write_lock }.value
        end
      },
      "Semaphore#to_mtx#try_lock" => {
        make: -> { ProcessShared::BinarySemaphore.new(1).to_mtx.tap(&:lock) }, answer: false,
        calls: [->(x) { x.try_lock }], intact: ->(x) { x.locked? && x.unlock && !x.locked? }
      }
    }

    # Fails if the thread's own read hold makes it wait behind the writer that waits for that very hold
    # (false after the timeout; acquire_read_lock would deadlock both processes).
    it "ReadWriteLock#try_read_lock holding a read lock, a writer of another process waiting, answers true" do
      lock = ProcessShared::ReadWriteLock.new
      lock.acquire_read_lock
      pid = fork_child { lock.acquire_write_lock && lock.release_write_lock }
      sleep 0.005 until lock.has_waiters?
      started = now
      expect([lock.try_read_lock, lock.try_read_lock(0), lock.try_read_lock(small)]).to eq([true, true, true])
      expect(lock.acquire_read_lock).to be(true)
      expect(now - started).to be < prompt
      expect(Thread.new { lock.try_read_lock(0) }.value).to be(false) # another thread waits behind the writer
      5.times { lock.release_read_lock }
      wait_child(pid) # the writer got in once every hold was released
      expect(no_read.call(lock)).to be(true)
    end

    self_held.each do |name, c|
      # Fails if the call raises (ProcessError: "deadlock"), waits out its timeout, or changes the holds.
      it "#{name} answers #{c[:answer]} at once, holding what it held" do
        x = c[:make].call
        c[:calls].each_with_index do |call, i|
          started = now
          expect_answer(outcome { call.call(x) }, c[:answer], "#{name} call #{i}")
          expect(now - started).to be < prompt
        end
        expect(c[:intact].call(x)).to be_truthy
      end
    end
  end

  # A thread of this process blocks on a state another process holds and is ended by Thread#raise or
  # Thread#kill. It held a Mutex (`before`) when it started waiting: it still holds exactly that (and, for a
  # condition wait, the lock it waited with, taken back), nothing it waited for, and is counted as a waiter
  # nowhere. Then the other process releases and carries on (its exit status fails the example otherwise),
  # and the state works normally here too.
  describe "a wait on another process's state, ended by Thread#raise or Thread#kill" do
    # name => {
    #   make:, hold: ->(o) in the child (after the thread waits, if thread_first), release: ->(o, st) in the
    #   child once the parent is done (it must also carry on normally),
    #   block: ->(o, rec) the thread's blocking call (may record into rec), want: what it recorded,
    #   asleep: ->(o) true once the thread is counted as waiting,
    #   inside: ->(o) [...] the state seen by the thread as it ends, want_inside: its expected value,
    #   relock: true if the thread must still take back a lock the other process holds (it cannot end before),
    #   after: ->(o) true if the state works normally (in the parent, while the child releases)
    # }
    sem_case = lambda do |block|
      {
        make: -> { { s: ProcessShared::Semaphore.new(1) } }, hold: ->(o) { o[:s].wait },
        release: ->(o, _) { o[:s].post && o[:s].wait(undo: true) && o[:s].post },
        block: block, asleep: ->(o) { o[:s].waiters == 1 },
        inside: ->(o) { [o[:s].waiters] }, want_inside: [0],
        after: ->(o) { o[:s].try_wait(5).nil? && o[:s].value.zero? && (o[:s].post || true) && o[:s].value == 1 }
      }
    end
    rw_after = ->(o) { o[:rw].try_write_lock(5) && o[:rw].release_write_lock && !o[:rw].write_locked? }
    interrupts = {
      "Mutex#lock" => {
        make: mutex, hold: ->(o) { o[:m].lock }, release: ->(o, _) { o[:m].unlock && o[:m].synchronize { 1 } },
        block: ->(o, _) { o[:m].lock }, inside: ->(o) { [o[:m].owned?] }, want_inside: [false],
        after: ->(o) { o[:m].try_lock(5) && o[:m].unlock && !o[:m].locked? }
      },
      "Mutex#synchronize" => {
        make: mutex, hold: ->(o) { o[:m].lock }, release: ->(o, _) { o[:m].unlock && o[:m].synchronize { 1 } },
        block: ->(o, rec) { o[:m].synchronize { rec << :entered } }, inside: ->(o) { [o[:m].owned?] },
        want_inside: [false], after: ->(o) { o[:m].try_lock(5) && o[:m].unlock && !o[:m].locked? }
      },
      "Monitor#enter" => {
        make: -> { { mon: ProcessShared::Monitor.new } }, hold: ->(o) { o[:mon].enter },
        release: ->(o, _) { o[:mon].exit || o[:mon].synchronize { 1 } },
        block: ->(o, _) { o[:mon].enter }, inside: ->(o) { [o[:mon].mon_owned?, o[:mon].mon_count] },
        want_inside: [false, 0], after: ->(o) { o[:mon].try_enter(5) && (o[:mon].exit || !o[:mon].mon_locked?) }
      },
      "ConditionVariable#wait(Mutex) under synchronize, the mutex taken by the other process meanwhile" => {
        make: -> { { m: ProcessShared::Mutex.new, cv: ProcessShared::ConditionVariable.new } },
        thread_first: true,
        hold: lambda do |o|
          sleep 0.005 until o[:cv].waiters == 1 && !o[:m].locked?
          o[:m].lock
        end,
        release: ->(o, _) { o[:m].unlock && o[:m].synchronize { o[:cv].signal } },
        block: lambda do |o, rec|
          o[:m].synchronize do
            o[:cv].wait(o[:m])
          ensure
            rec << [o[:m].owned?, o[:cv].waiters] # held again, no longer a waiter
          end
        end,
        want: [[true, 0]], relock: true, asleep: ->(o) { o[:m].locked? },
        inside: ->(o) { [o[:m].owned?, o[:cv].waiters] }, want_inside: [false, 0],
        after: ->(o) { o[:m].try_lock(5) && o[:m].unlock && !o[:m].locked? && o[:cv].waiters.zero? }
      },
      "ConditionVariable#wait(Monitor entered twice), the monitor taken by the other process meanwhile" => {
        make: -> { { mon: ProcessShared::Monitor.new, cv: ProcessShared::ConditionVariable.new } },
        thread_first: true,
        hold: lambda do |o|
          sleep 0.005 until o[:cv].waiters == 1 && !o[:mon].mon_locked?
          o[:mon].enter
        end,
        release: ->(o, _) { o[:mon].exit || o[:mon].synchronize { o[:cv].signal } },
        block: lambda do |o, rec|
          o[:mon].synchronize do
            o[:mon].synchronize do
              o[:cv].wait(o[:mon], 60)
            ensure
              rec << [o[:mon].mon_count, o[:cv].waiters]
            end
          end
        end,
        want: [[2, 0]], relock: true, asleep: ->(o) { o[:mon].mon_locked? },
        inside: ->(o) { [o[:mon].mon_owned?, o[:mon].mon_count] }, want_inside: [false, 0],
        after: ->(o) { o[:mon].try_enter(5) && (o[:mon].exit || !o[:mon].mon_locked?) }
      },
      "Monitor::ConditionVariable#wait_until, the monitor taken by the other process meanwhile" => {
        make: mon_cond, thread_first: true,
        hold: lambda do |o|
          sleep 0.005 until o[:cond].instance_variable_get(:@cond).waiters == 1 && !o[:mon].mon_locked?
          o[:mon].enter
        end,
        release: ->(o, _) { o[:mon].exit || o[:mon].synchronize { o[:cond].signal } },
        block: lambda do |o, rec|
          o[:mon].synchronize do
            o[:cond].wait_until { false }
          ensure
            rec << [o[:mon].mon_owned?, o[:mon].mon_count]
          end
        end,
        want: [[true, 1]], relock: true, asleep: ->(o) { o[:mon].mon_locked? && !o[:mon].mon_owned? },
        inside: ->(o) { [o[:mon].mon_owned?] }, want_inside: [false],
        after: ->(o) { o[:mon].try_enter(5) && (o[:mon].exit || !o[:mon].mon_locked?) }
      },
      "Semaphore#wait" => sem_case.call(->(o, _) { o[:s].wait }),
      "Semaphore#wait(undo: true)" => sem_case.call(->(o, _) { o[:s].wait(undo: true) }),
      "Semaphore#synchronize" => sem_case.call(->(o, rec) { o[:s].synchronize { rec << :entered } }),
      "Semaphore#try_wait(60)" => sem_case.call(->(o, _) { o[:s].try_wait(60) }),
      "ReadWriteLock#acquire_read_lock (another process writes)" => {
        make: rw, hold: ->(o) { o[:rw].acquire_write_lock },
        release: ->(o, _) { o[:rw].release_write_lock && o[:rw].with_write_lock { 1 } },
        block: ->(o, _) { o[:rw].acquire_read_lock }, asleep: ->(o) { o[:rw].has_waiters? },
        inside: ->(o) { [no_read.call(o[:rw]), no_write.call(o[:rw])] }, want_inside: [true, true], after: rw_after
      },
      "ReadWriteLock#acquire_write_lock (another process reads)" => {
        make: rw, hold: ->(o) { o[:rw].acquire_read_lock },
        release: ->(o, _) { o[:rw].release_read_lock && o[:rw].with_read_lock { 1 } },
        block: ->(o, _) { o[:rw].acquire_write_lock }, asleep: ->(o) { o[:rw].has_waiters? },
        # The aborted writer let readers in again: not write-locked while the other process reads.
        inside: ->(o) { [no_write.call(o[:rw]), o[:rw].write_locked?] }, want_inside: [true, false], after: rw_after
      },
      "ReadWriteLock#acquire_write_lock (another process writes)" => {
        make: rw, hold: ->(o) { o[:rw].acquire_write_lock },
        release: ->(o, _) { o[:rw].release_write_lock && o[:rw].with_write_lock { 1 } },
        block: ->(o, _) { o[:rw].acquire_write_lock }, asleep: ->(o) { o[:rw].has_waiters? },
        inside: ->(o) { [no_write.call(o[:rw]), no_read.call(o[:rw])] }, want_inside: [true, true], after: rw_after
      },
      "Queue#pop (empty: the other process is the producer)" => {
        make: -> { { q: ProcessShared::Queue.new(capacity: 256) } }, hold: ->(_) {},
        release: ->(o, _) { o[:q].push(:fed) },
        block: ->(o, _) { o[:q].pop }, asleep: ->(o) { o[:q].num_waiting == 1 },
        inside: ->(o) { [o[:q].num_waiting, o[:q].size] }, want_inside: [0, 0],
        after: ->(o) { o[:q].pop(timeout: 5) == :fed && o[:q].empty? && o[:q].num_waiting.zero? }
      },
      "Queue#push (full: the other process filled it)" => {
        make: -> { { q: ProcessShared::Queue.new(capacity: 256, max: 1) } }, hold: ->(o) { o[:q].push(:theirs) },
        release: ->(o, _) { o[:q].pop(timeout: 5) == :theirs or raise "lost the other process's element" },
        block: ->(o, _) { o[:q].push(:mine) }, asleep: ->(o) { o[:q].num_waiting == 1 },
        inside: ->(o) { [o[:q].num_waiting, o[:q].size] }, want_inside: [0, 1],
        after: ->(o) { o[:q].push(:next, timeout: 5) && o[:q].pop(true) == :next && o[:q].empty? }
      },
      "Event#wait" => {
        make: -> { { e: ProcessShared::Event.new } }, hold: ->(_) {}, release: ->(o, _) { o[:e].set },
        block: ->(o, _) { o[:e].wait }, inside: ->(o) { [o[:e].set?] }, want_inside: [false],
        after: ->(o) { o[:e].wait(5) }
      },
      "CountDownLatch#wait" => {
        make: -> { { l: ProcessShared::CountDownLatch.new(1) } }, hold: ->(_) {},
        release: ->(o, _) { o[:l].count_down }, block: ->(o, _) { o[:l].wait },
        inside: ->(o) { [o[:l].count] }, want_inside: [1], after: ->(o) { o[:l].wait(5) && o[:l].count.zero? }
      },
      "Barrier#wait (2 parties)" => {
        make: -> { { b: ProcessShared::Barrier.new(2) } }, hold: ->(_) {},
        # The interrupted arrival was withdrawn: it takes this process's and the other's to trip it.
        release: ->(o, _) { o[:b].wait(10) or raise "the barrier did not trip" },
        block: ->(o, _) { o[:b].wait }, asleep: ->(o) { o[:b].number_waiting == 1 },
        inside: ->(o) { [o[:b].number_waiting, o[:b].broken?] }, want_inside: [0, false],
        after: ->(o) { o[:b].wait(10) && !o[:b].broken? }
      }
    }

    # Whether `t` ends within `secs` (Thread#join would re-raise the thread's exception here).
    def ends_within(t, secs)
      deadline = now + secs
      sleep 0.005 while t.alive? && now < deadline
      !t.alive?
    end

    def interrupt_and_check(c, how)
      o = c[:make].call
      before = ProcessShared::Mutex.new
      rec = []
      ready = handshake
      done = handshake
      start = lambda do
        Thread.new do
          Thread.current.report_on_exception = false
          before.lock
          begin
            c[:block].call(o, rec)
            rec << :returned
          ensure
            rec << [:end, before.owned?, *c[:inside].call(o)]
            before.unlock if before.owned?
          end
        end
      end
      t = start.call if c[:thread_first]
      pid = fork_child do
        st = c[:hold].call(o)
        ready.signal
        done.wait(timeout: 30)
        c[:release].call(o, st)
      end
      ready.wait
      t ||= start.call
      sleep 0.005 until t.status == "sleep" && (c[:asleep].nil? || c[:asleep].call(o))
      how == :raise ? t.raise(RuntimeError, "interrupted") : t.kill
      if c[:relock]
        expect(ends_within(t, 0.3)).to be(false) # taking the lock back, which the other process holds
      else
        expect(ends_within(t, 5)).to be(true) # ended while the other process still holds the state
      end
      done.signal
      expect(ends_within(t, 10)).to be(true)
      if how == :raise
        expect { t.value }.to raise_error(RuntimeError, "interrupted")
      else
        expect(t.value).to be_nil
      end
      expect(rec).to eq(c.fetch(:want, []) + [[:end, true, *c[:want_inside]]])
      expect(c[:after].call(o)).to be_truthy
      wait_child(pid)
    end

    interrupts.each do |name, c|
      # Fails if the interrupt does not end the wait, if the thread ends holding what it waited for (or
      # not holding what it held: `before`, a condition wait's lock), if a waiter stays counted, if the
      # wait took something (a permit, an element, an arrival) that the other process or `after` misses.
      %i[raise kill].each do |how|
        it "#{name}: Thread##{how} leaves the thread holding exactly what it held" do
          interrupt_and_check(c, how)
        end
      end
    end
  end
end
