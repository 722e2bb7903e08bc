# frozen_string_literal: true

RSpec.describe ProcessShared::Semaphore do
  it "defaults to 1 and counts waits and posts" do
    sem = described_class.new
    expect(sem.value).to eq(1)
    sem.wait
    expect(sem.value).to eq(0)
    sem.post
    sem.post
    expect(sem.value).to eq(2)
  end

  it "accepts values 0..2**31-1 only" do
    expect(described_class.new(0).value).to eq(0)
    expect(described_class.new(2**31 - 1).value).to eq(2**31 - 1)
    expect { described_class.new(-1) }.to raise_error(ArgumentError)
    expect { described_class.new(2**31) }.to raise_error(ArgumentError)
    expect { described_class.new(2**100) }.to raise_error(ArgumentError)
    expect { described_class.new("1") }.to raise_error(TypeError)
    expect { described_class.new(1.5) }.to raise_error(TypeError)
    expect { described_class.new(1, 2) }.to raise_error(ArgumentError)
  end

  it "raises Errno::EOVERFLOW when posted past the maximum, unchanged" do
    sem = described_class.new(2**31 - 1)
    expect { sem.post }.to raise_error(Errno::EOVERFLOW)
    expect(sem.value).to eq(2**31 - 1)
  end

  describe "#try_wait" do
    it "takes a permit without blocking" do
      sem = described_class.new(1)
      sem.try_wait
      expect(sem.value).to eq(0)
    end

    it "raises Errno::EAGAIN at 0 without a timeout" do
      sem = described_class.new(0)
      expect { sem.try_wait }.to raise_error(Errno::EAGAIN)
      expect(sem.value).to eq(0)
    end

    it "raises Errno::ETIMEDOUT after waiting the timeout" do
      sem = described_class.new(0)
      t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      expect { sem.try_wait(0.1) }.to raise_error(Errno::ETIMEDOUT)
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t).to be_between(0.09, 2)
      expect { sem.try_wait(0) }.to raise_error(Errno::ETIMEDOUT)
      expect(sem.value).to eq(0)
      expect(sem.waiters).to eq(0)
    end

    it "returns when another process posts within the timeout" do
      sem = described_class.new(0)
      pid = fork_child do
        sleep 0.05
        sem.post
      end
      sem.try_wait(10)
      expect(sem.value).to eq(0)
      wait_child(pid)
    end

    it "rejects bad timeouts" do
      sem = described_class.new(0)
      expect { sem.try_wait(-0.5) }.to raise_error(ArgumentError)
      expect { sem.try_wait(:x) }.to raise_error(ArgumentError)
    end
  end

  it "wakes a waiter in another process (ping-pong)" do
    ping = described_class.new(0)
    pong = described_class.new(0)
    pid = fork_child do
      200.times do
        ping.wait
        pong.post
      end
    end
    200.times do
      ping.post
      pong.wait
    end
    wait_child(pid)
    expect([ping.value, pong.value]).to eq([0, 0])
  end

  it "never loses a permit among many processes" do
    sem = described_class.new(0)
    done = described_class.new(0)
    consumers = Array.new(3) do
      fork_child do
        300.times { sem.wait }
        done.post
      end
    end
    producers = Array.new(3) { fork_child { 300.times { sem.post } } }
    wait_children(producers + consumers, timeout: 60)
    expect(sem.value).to eq(0)
    expect(done.value).to eq(3)
  end

  it "#synchronize waits, yields, posts even when the block raises" do
    sem = described_class.new(1)
    expect(sem.synchronize { sem.value }).to eq(0)
    expect(sem.value).to eq(1)
    expect { sem.synchronize { raise "x" } }.to raise_error("x")
    expect(sem.value).to eq(1)
  end

  describe "#to_mtx" do
    it "is an unchecked mutex facade" do
      mtx = described_class.new(1).to_mtx
      expect(mtx).not_to be_locked
      expect(mtx.lock).to be(mtx)
      expect(mtx).to be_locked
      expect(mtx.try_lock).to be(false)
      mtx.unlock
      expect(mtx.try_lock).to be(true)
      mtx.unlock
      expect(mtx.synchronize { mtx.locked? }).to be(true)
      expect(mtx).not_to be_locked
      mtx.lock
      expect(mtx.sleep(0.01)).to be_an(Integer) # seconds slept, rounded (as Kernel#sleep); 1 on a loaded host
      expect(mtx).to be_locked
      mtx.close
      expect { mtx.lock }.to raise_error(ProcessShared::ClosedError)
    end
  end

  it "shows value and waiters in #inspect; closes idempotently" do
    sem = described_class.new(3)
    expect(sem.inspect).to include("value=3")
    sem.close
    sem.close
    expect(sem).to be_closed
    expect { sem.wait }.to raise_error(ProcessShared::ClosedError)
    expect { sem.post }.to raise_error(ProcessShared::ClosedError)
    expect { sem.value }.to raise_error(ProcessShared::ClosedError)
  end
end

RSpec.describe ProcessShared::BinarySemaphore do
  it "is a Semaphore that only holds 0 or 1" do
    expect(described_class.new).to be_a(ProcessShared::Semaphore)
    expect(described_class.new(0).value).to eq(0)
    expect { described_class.new(2) }.to raise_error(ArgumentError)
    expect { described_class.new(-1) }.to raise_error(ArgumentError)
  end

  it "raises ProcessError when posted at 1 and stays at 1" do
    sem = described_class.new(1)
    expect { sem.post }.to raise_error(ProcessShared::ProcessError)
    expect(sem.value).to eq(1)
    sem.wait
    sem.post
    expect(sem.value).to eq(1)
  end

  it "works across processes" do
    sem = described_class.new(0)
    pid = fork_child { sem.post }
    sem.try_wait(10)
    wait_child(pid)
    expect(sem.value).to eq(0)
  end
end
