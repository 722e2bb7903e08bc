# frozen_string_literal: true

RSpec.describe ProcessShared::Mutex do
  subject!(:mutex) { described_class.new }

  it "locks and unlocks, returning self" do
    expect(mutex.lock).to be(mutex)
    expect(mutex).to be_locked
    expect(mutex).to be_owned
    expect(mutex.unlock).to be(mutex)
    expect(mutex).not_to be_locked
    expect(mutex).not_to be_owned
  end

  it "raises ProcessError when the holding thread locks it again" do
    mutex.lock
    expect { mutex.lock }.to raise_error(ProcessShared::ProcessError)
    expect(mutex).to be_owned
  end

  it "raises ProcessError when unlocked while not locked" do
    expect { mutex.unlock }.to raise_error(ProcessShared::ProcessError)
  end

  it "raises ProcessError when another thread of this process unlocks it" do
    mutex.lock
    expect do
      Thread.new do
        Thread.current.report_on_exception = false
        mutex.unlock
      end.join
    end.to raise_error(ProcessShared::ProcessError)
    expect(mutex).to be_owned
  end

  it "raises ProcessError when another process unlocks it, and the lock stays held" do
    mutex.lock
    pid = fork_child do
      raise "child must not own the parent's lock" if mutex.owned?

      begin
        mutex.unlock
        exit!(2)
      rescue ProcessShared::ProcessError
        nil
      end
    end
    wait_child(pid)
    expect(mutex).to be_owned
  end

  it "does not let a forked child of the holder own the lock" do
    mutex.lock
    pid = fork_child do
      raise "owned in child" if mutex.owned?
      raise "not locked in child" unless mutex.locked?
      raise "child got the lock" if mutex.try_lock
    end
    wait_child(pid)
  end

  describe "#try_lock" do
    it "takes a free lock" do
      expect(mutex.try_lock).to be(true)
      expect(mutex).to be_owned
    end

    it "returns false at once when held by another process" do
      h = handshake
      done = handshake
      pid = fork_child do
        mutex.lock
        h.signal
        done.wait
        mutex.unlock
      end
      h.wait
      expect(mutex.try_lock).to be(false)
      expect(mutex.try_lock(0)).to be(false)
      t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      expect(mutex.try_lock(0.1)).to be(false)
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t
      expect(elapsed).to be >= 0.09
      expect(elapsed).to be < 2
      done.signal
      wait_child(pid)
      expect(mutex.try_lock(5)).to be(true)
    end

    it "waits up to the timeout and gets the lock when it is released" do
      h = handshake
      pid = fork_child do
        mutex.lock
        h.signal
        sleep 0.05
        mutex.unlock
      end
      h.wait
      expect(mutex.try_lock(10)).to be(true)
      wait_child(pid)
    end

    it "returns false when the calling thread already holds it" do
      mutex.lock
      expect(mutex.try_lock).to be(false)
      expect(mutex.try_lock(0.01)).to be(false)
    end

    it "rejects negative and non-numeric timeouts" do
      expect { mutex.try_lock(-1) }.to raise_error(ArgumentError)
      expect { mutex.try_lock(Float::NAN) }.to raise_error(ArgumentError)
      expect { mutex.try_lock("1") }.to raise_error(ArgumentError)
      expect(mutex).not_to be_locked
    end
  end

  describe "#synchronize" do
    it "returns the block's value and unlocks" do
      expect(mutex.synchronize { 42 }).to eq(42)
      expect(mutex).not_to be_locked
    end

    it "unlocks when the block raises" do
      expect { mutex.synchronize { raise "boom" } }.to raise_error(RuntimeError, "boom")
      expect(mutex).not_to be_locked
    end

    it "unlocks on break and throw" do
      [1].each { mutex.synchronize { break } }
      expect(mutex).not_to be_locked
      catch(:out) { mutex.synchronize { throw :out } }
      expect(mutex).not_to be_locked
    end

    it "requires a block" do
      expect { mutex.synchronize }.to raise_error(ThreadError)
    end

    it "excludes other processes: 4 processes x 500 unprotected read-modify-writes add up" do
      mem = ProcessShared::SharedMemory.new(:int64)
      pids = Array.new(4) do
        fork_child do
          500.times { mutex.synchronize { mem.put_int64(0, mem.get_int64(0) + 1) } }
        end
      end
      wait_children(pids, timeout: 60)
      expect(mem.get_int64(0)).to eq(2000)
    end

    it "excludes other threads of the same process" do
      mem = ProcessShared::SharedMemory.new(:int64)
      threads = Array.new(4) do
        Thread.new do
          500.times do
            mutex.synchronize do
              v = mem.get_int64(0)
              Thread.pass
              mem.put_int64(0, v + 1)
            end
          end
        end
      end
      threads.each(&:join)
      expect(mem.get_int64(0)).to eq(2000)
    end
  end

  describe "#sleep" do
    it "unlocks while sleeping, relocks, and returns the seconds slept" do
      mutex.lock
      h = handshake
      pid = fork_child do
        raise "lock not released during sleep" unless mutex.try_lock(10)

        h.signal
        mutex.unlock
      end
      main = Thread.current
      waker = Thread.new do
        h.wait
        sleep 0.01 until main.status == "sleep"
        main.wakeup
      end
      expect(mutex.sleep).to be_a(Integer) # woken by `waker` once the child has had the lock
      expect(mutex).to be_owned
      waker.join
      wait_child(pid)
      expect(mutex.sleep(0.01)).to be_between(0, 5) # whole seconds, rounded (a loaded machine may oversleep)
      expect(mutex).to be_owned
    end

    it "raises ProcessError when not held" do
      expect { mutex.sleep(0.01) }.to raise_error(ProcessShared::ProcessError)
    end
  end

  it "releases the GVL while waiting" do
    mutex.lock
    waiter = Thread.new { mutex.synchronize { :got } }
    counter = 0
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 0.2
    counter += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    expect(counter).to be > 1000
    expect(waiter).to be_alive
    mutex.unlock
    expect(waiter.value).to eq(:got)
  end

  it "shows its state in #inspect" do
    expect(mutex.inspect).to include("unlocked")
    mutex.lock
    expect(mutex.inspect).to include("owner_pid=#{Process.pid}")
    expect(mutex.owner_pid).to eq(Process.pid)
  end

  it "closes idempotently and raises ClosedError afterwards" do
    mutex.close
    mutex.close
    expect(mutex).to be_closed
    expect { mutex.lock }.to raise_error(ProcessShared::ClosedError)
    expect { mutex.try_lock }.to raise_error(ProcessShared::ClosedError)
    expect { mutex.locked? }.to raise_error(ProcessShared::ClosedError)
    expect(mutex.inspect).to include("closed")
  end

  it "survives being closed inside its own synchronize block" do
    expect(mutex.synchronize do
             mutex.close
             :ok
           end).to eq(:ok)
    expect(mutex).to be_closed
  end

  it ".open yields a mutex and closes it" do
    m = nil
    expect(described_class.open do |x|
             m = x
             x.synchronize { 7 }
           end).to eq(7)
    expect(m).to be_closed
  end

  it "rejects arguments to new" do
    expect { described_class.new(1) }.to raise_error(ArgumentError)
  end
end
