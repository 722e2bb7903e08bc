# frozen_string_literal: true

RSpec.describe ProcessShared::ConditionVariable do
  let!(:mutex) { ProcessShared::Mutex.new }
  let!(:cond) { described_class.new }

  it "returns false after the timeout, holding the mutex again" do
    mutex.lock
    t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    expect(cond.wait(mutex, 0.1)).to be(false)
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t).to be_between(0.09, 2)
    expect(mutex).to be_owned
    expect(cond.waiters).to eq(0)
  end

  it "is woken by a signal from another process and returns true holding the mutex" do
    ready = handshake
    flag = ProcessShared::SharedMemory.new(:int)
    pid = fork_child do
      mutex.synchronize do
        ready.signal
        cond.wait(mutex) until flag.get_int(0) == 1
        raise "mutex not held after wait" unless mutex.owned?
      end
    end
    ready.wait
    mutex.synchronize do # the child is inside wait once we get the mutex
      flag.put_int(0, 1)
      cond.signal
    end
    wait_child(pid)
  end

  it "signal wakes one waiter, broadcast wakes all" do
    woken = ProcessShared::Semaphore.new(0)
    entered = ProcessShared::Semaphore.new(0)
    pids = Array.new(3) do
      fork_child do
        mutex.synchronize do
          entered.post
          raise "timed out" unless cond.wait(mutex, 30)
        end
        woken.post
      end
    end
    3.times { entered.wait }
    mutex.synchronize { cond.signal } # all three are waiting: each released the mutex inside wait
    woken.try_wait(10)
    sleep 0.2
    expect(woken.value).to eq(0) # only one woke
    mutex.synchronize { cond.broadcast }
    2.times { woken.try_wait(10) }
    wait_children(pids)
  end

  it "does not remember a signal sent when nobody waits" do
    cond.signal
    cond.broadcast
    mutex.lock
    expect(cond.wait(mutex, 0.05)).to be(false)
  end

  it "works with a Monitor held several times, restoring the count" do
    mon = ProcessShared::Monitor.new
    mon.enter
    mon.enter
    expect(cond.wait(mon, 0.01)).to be(false)
    expect(mon.mon_count).to eq(2)
    mon.exit
    mon.exit
    expect(mon.mon_locked?).to be(false)
  end

  it "raises ProcessError when the mutex is not held, TypeError for other locks" do
    expect { cond.wait(mutex, 0.01) }.to raise_error(ProcessShared::ProcessError)
    expect { cond.wait(ProcessShared::Monitor.new, 0.01) }.to raise_error(ProcessShared::ProcessError)
    expect { cond.wait(Thread::Mutex.new) }.to raise_error(TypeError)
    expect(cond.waiters).to eq(0)
  end

  it "rejects bad timeouts before releasing the mutex" do
    mutex.lock
    expect { cond.wait(mutex, -1) }.to raise_error(ArgumentError)
    expect(mutex).to be_owned
  end

  it "closes" do
    cond.close
    expect { cond.signal }.to raise_error(ProcessShared::ClosedError)
    expect(cond).to be_closed
  end
end
