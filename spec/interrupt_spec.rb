# frozen_string_literal: true

# Every blocking call releases the GVL and is interruptible by Thread#raise, Thread#kill, Timeout and
# Ctrl-C (Interrupt) within a bound, leaving the primitive unchanged: no permit consumed, no lock held, no
# waiter counted.
RSpec.describe "interrupting blocking calls" do
  # A generous upper bound in seconds; the contract is 100 ms, measured by `rake bench`.
  let(:limit) { 1.0 }

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # name => lambda returning [blocking_call, invariant_check]
  blockers = {
    "Semaphore#wait" => lambda {
      s = ProcessShared::Semaphore.new(0)
      [-> { s.wait }, -> { s.value.zero? && s.waiters.zero? && (s.post || true) && s.value == 1 }]
    },
    "Semaphore#try_wait(timeout)" => lambda {
      s = ProcessShared::Semaphore.new(0)
      [-> { s.try_wait(60) }, -> { s.value.zero? && s.waiters.zero? }]
    },
    "Semaphore#synchronize" => lambda {
      s = ProcessShared::Semaphore.new(0)
      [-> { s.synchronize { raise "entered" } }, -> { s.value.zero? && s.waiters.zero? }]
    },
    "Mutex#lock" => lambda {
      m = ProcessShared::Mutex.new
      m.lock
      [-> { m.lock }, -> { m.owned? && (m.unlock && Thread.new { m.try_lock && m.unlock }.value) }]
    },
    "Mutex#try_lock(timeout)" => lambda {
      m = ProcessShared::Mutex.new
      m.lock
      [-> { m.try_lock(60) }, -> { m.owned? && m.unlock && !m.locked? }]
    },
    "Mutex#synchronize" => lambda {
      m = ProcessShared::Mutex.new
      m.lock
      [-> { m.synchronize { raise "entered" } }, -> { m.owned? && m.unlock && !m.locked? }]
    },
    "Monitor#enter" => lambda {
      mon = ProcessShared::Monitor.new
      mon.enter
      [-> { mon.enter }, -> { mon.mon_owned? && mon.mon_count == 1 && (mon.exit || true) && !mon.mon_locked? }]
    },
    "Monitor#try_enter(timeout)" => lambda {
      mon = ProcessShared::Monitor.new
      mon.enter
      [-> { mon.try_enter(60) }, -> { mon.mon_count == 1 && (mon.exit || true) && !mon.mon_locked? }]
    },
    "ConditionVariable#wait(Mutex)" => lambda {
      m = ProcessShared::Mutex.new
      cv = ProcessShared::ConditionVariable.new
      [-> { m.synchronize { cv.wait(m) } }, -> { !m.locked? && cv.waiters.zero? }]
    },
    "ConditionVariable#wait(Monitor)" => lambda {
      mon = ProcessShared::Monitor.new
      cv = ProcessShared::ConditionVariable.new
      [-> { mon.synchronize { mon.synchronize { cv.wait(mon, 60) } } }, -> { !mon.mon_locked? && cv.waiters.zero? }]
    },
    "Monitor::ConditionVariable#wait_until" => lambda {
      mon = ProcessShared::Monitor.new
      cond = mon.new_cond
      [-> { mon.synchronize { cond.wait_until { false } } }, -> { !mon.mon_locked? }]
    },
    "Event#wait" => lambda {
      e = ProcessShared::Event.new
      [-> { e.wait }, -> { !e.set? && e.wait(0) == false }]
    },
    "CountDownLatch#wait(timeout)" => lambda {
      l = ProcessShared::CountDownLatch.new(1)
      [-> { l.wait(60) }, -> { l.count == 1 }]
    },
    "ReadWriteLock#acquire_read_lock" => lambda {
      rw = ProcessShared::ReadWriteLock.new
      rw.acquire_write_lock
      [-> { rw.acquire_read_lock }, lambda {
        rw.release_write_lock && !rw.has_waiters? && Thread.new { rw.try_write_lock && rw.release_write_lock }.value
      }]
    },
    "ReadWriteLock#acquire_write_lock (waiting for the writers' lock)" => lambda {
      rw = ProcessShared::ReadWriteLock.new
      rw.acquire_write_lock
      [-> { rw.acquire_write_lock }, lambda {
        rw.release_write_lock && !rw.has_waiters? && Thread.new { rw.try_write_lock && rw.release_write_lock }.value
      }]
    },
    "ReadWriteLock#try_write_lock(timeout) (waiting for a reader)" => lambda {
      rw = ProcessShared::ReadWriteLock.new
      rw.acquire_read_lock
      [-> { rw.try_write_lock(60) }, lambda {
        !rw.write_locked? && !rw.has_waiters? && rw.release_read_lock &&
          Thread.new { rw.try_write_lock && rw.release_write_lock }.value
      }]
    },
    "Queue#pop" => lambda {
      q = ProcessShared::Queue.new
      [-> { q.pop }, -> { q.num_waiting.zero? && q.push(:x) && q.pop(true) == :x && q.empty? }]
    },
    "Queue#push (full)" => lambda {
      q = ProcessShared::Queue.new(max: 1)
      q.push(:first)
      [-> { q.push(:second) }, -> { q.num_waiting.zero? && q.size == 1 && q.pop == :first && q.empty? }]
    },
    "Barrier#wait" => lambda {
      b = ProcessShared::Barrier.new(2)
      # The interrupted arrival was withdrawn: one more arrival does not trip it, and it is not broken.
      [-> { b.wait }, -> { b.number_waiting.zero? && !b.broken? && Thread.new { b.wait(0.05) }.value == false }]
    }
  }

  blockers.each do |name, make|
    describe name do
      it "ends on Thread#raise, promptly, leaving no trace" do
        call, check = make.call
        t = Thread.new do
          call.call
          :returned
        rescue StandardError => e
          e
        end
        sleep 0.01 until t.status == "sleep"
        sleep 0.05
        expect(t).to be_alive # it really blocks, with the GVL released (we are running)
        started = now
        t.raise(RuntimeError, "interrupt!")
        expect(t.join(5)).not_to be_nil
        expect(now - started).to be < limit
        expect(t.value.message).to eq("interrupt!")
        expect(check.call).to be_truthy
      end

      it "ends on Thread#kill" do
        call, check = make.call
        t = Thread.new { call.call }
        sleep 0.01 until t.status == "sleep"
        started = now
        t.kill
        expect(t.join(5)).not_to be_nil
        expect(now - started).to be < limit
        expect(check.call).to be_truthy
      end

      it "ends on Timeout.timeout" do
        call, check = make.call
        started = now
        expect do
          Thread.new do
            Thread.current.report_on_exception = false
            Timeout.timeout(0.1) do
              call.call
            end
          end.join
        end.to raise_error(Timeout::Error)
        expect(now - started).to be < 0.1 + limit
        expect(check.call).to be_truthy
      end

      it "ends on SIGINT (Ctrl-C) with Interrupt, in a child process" do
        call, check = make.call
        r, w = IO.pipe
        pid = fork_child do
          r.close
          trap(:INT, "DEFAULT") # RSpec traps INT in the parent; restore Ruby's Interrupt
          begin
            w.write("w")
            w.flush
            call.call
            exit!(3)
          rescue Interrupt
            exit!(0)
          end
        end
        w.close
        r.read(1)
        sleep 0.1 # let it block (a signal before it blocks is also an Interrupt)
        started = now
        Process.kill(:INT, pid)
        wait_child(pid, timeout: 10)
        expect(now - started).to be < limit + 0.5
        expect(check.call).to be_truthy # shared state, seen from the parent
      end
    end
  end

  it "a signal that merely arrives (SIGCHLD, a trapped signal) is not an error" do
    sem = ProcessShared::Semaphore.new(0)
    hits = 0
    old = trap(:USR1) { hits += 1 }
    waiter = Thread.new { sem.try_wait(30) }
    sleep 0.01 until waiter.status == "sleep"
    pid = fork_child { nil } # SIGCHLD when it exits
    wait_child(pid)
    3.times do
      Process.kill(:USR1, Process.pid)
      sleep 0.05
    end
    expect(waiter).to be_alive
    sem.post
    expect(waiter.value).to be_nil
    expect(hits).to eq(3)
  ensure
    trap(:USR1, old || "DEFAULT")
  end
end
