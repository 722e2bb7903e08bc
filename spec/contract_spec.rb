# frozen_string_literal: true

require "spec_helper"
require_relative "support/postgres_server"

# One contract, two backends: every scenario below runs against this host's named objects
# (ProcessShared::Local) and against PostgreSQL (ProcessShared::Postgres, a server this run starts), through
# the same factory methods, so code moves from one host to many by changing where its objects come from.
RSpec.shared_examples "the contract of every backend" do
  let!(:ns) { "contract-#{Process.pid}-#{rand(1 << 30)}" }
  let!(:objects) { backend.call(ns) }
  let(:local) { objects.is_a?(ProcessShared::Local) }

  after do
    if objects.respond_to?(:objects)
      objects.objects.each { |o| objects.unlink(o[:name]) }
    else
      @names&.each do |n|
        objects.unlink(n)
      end
    end
    objects.close if objects.respond_to?(:close)
  end

  # Opens (and remembers, to unlink it after the example) an object of the backend.
  def make(kind, name, *args, **kw)
    (@names ||= []) << name
    objects.public_send(kind, name, *args, **kw)
  end

  def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  describe "Mutex" do
    let!(:mutex) { make(:mutex, "m") }

    it "locks, reports, and refuses misuse as Thread::Mutex does" do
      expect(mutex.lock).to be(mutex)
      expect([mutex.locked?, mutex.owned?]).to eq([true, true])
      expect { mutex.lock }.to raise_error(ProcessShared::ProcessError) { |e| expect(e).to be_a(ThreadError) }
      expect(mutex.try_lock).to be(false)
      expect(mutex.unlock).to be(mutex)
      expect([mutex.locked?, mutex.owned?]).to eq([false, false])
      expect { mutex.unlock }.to raise_error(ProcessShared::ProcessError)
      expect(mutex.synchronize { :value }).to eq(:value)
      expect { mutex.try_lock(-1) }.to raise_error(ArgumentError)
    end

    it "excludes other processes: 4 children × 25 read-modify-writes lose nothing" do
      count = make(:atomic_integer, "count")
      pids = Array.new(4) do
        fork_child do
          25.times do
            mutex.synchronize do
              v = count.value
              count.value = v + 1
            end
          end
        end
      end
      wait_children(pids, timeout: 60)
      expect(count.value).to eq(100)
    end

    it "try_lock(timeout) waits for a holder in another process, then takes it" do
      h = handshake
      release = handshake
      pid = fork_child do
        mutex.lock
        h.signal
        release.wait
        mutex.unlock
      end
      h.wait
      expect(mutex.try_lock(0.05)).to be(false)
      release.signal
      expect(mutex.try_lock(10)).to be(true)
      mutex.unlock
      wait_child(pid)
    end

    it "tells the next acquirer, holding the lock, that the holder was SIGKILLed holding it" do
      h = handshake
      pid = fork_child do
        mutex.lock
        h.signal
        sleep
      end
      h.wait
      waiter = blocked_thread { mutex.lock }
      kill_child(pid)
      started = monotonic
      expect { waiter.join(10) }.to raise_error(ProcessShared::OwnerDeadError) { |e| expect(e.pid).to eq(pid) if local }
      expect(monotonic - started).to be < 1.0
      expect(mutex.locked?).to be(true)
    end

    it "ends a blocked lock on Thread#raise, leaving no trace" do
      h = handshake
      release = handshake
      pid = fork_child do
        mutex.lock
        h.signal
        release.wait
        mutex.unlock
      end
      h.wait
      waiter = blocked_thread { mutex.lock }
      started = monotonic
      waiter.raise(RuntimeError, "stop")
      expect { waiter.join(5) }.to raise_error(RuntimeError, "stop")
      expect(monotonic - started).to be < 1.0
      release.signal
      wait_child(pid)
      expect(mutex.try_lock(5)).to be(true)
      mutex.unlock
    end
  end

  describe "Semaphore" do
    it "counts permits, fails fast or times out as the local one does, and wakes waiters in other processes" do
      sem = make(:semaphore, "s", 1)
      sem.wait
      expect(sem.value).to eq(0)
      expect { sem.try_wait }.to raise_error(Errno::EAGAIN)
      expect { sem.try_wait(0.05) }.to raise_error(Errno::ETIMEDOUT)
      h = handshake
      pid = fork_child do
        h.signal
        sem.wait
      end
      h.wait
      sem.post
      wait_child(pid)
      expect(sem.value).to eq(0)
      sem.post
      expect(sem.synchronize { sem.value }).to eq(0)
      expect(sem.value).to eq(1)
    end

    it "ends a blocked wait on Thread#raise without taking a permit" do
      sem = make(:semaphore, "s-interrupt", 0)
      waiter = blocked_thread { sem.wait }
      started = monotonic
      waiter.raise(RuntimeError, "stop")
      expect { waiter.join(5) }.to raise_error(RuntimeError, "stop")
      expect(monotonic - started).to be < 1.0
      sem.post
      expect(sem.value).to eq(1)
    end
  end

  describe "ReadWriteLock" do
    it "shares reads, excludes writes, and refuses a release it does not hold" do
      rw = make(:read_write_lock, "rw")
      rw.acquire_read_lock
      h = handshake
      pid = fork_child do
        raise "a second reader waited" unless rw.try_read_lock
        raise "a writer got in beside a reader" if rw.try_write_lock

        rw.release_read_lock
        h.signal
      end
      h.wait
      wait_child(pid)
      rw.release_read_lock
      expect { rw.release_read_lock }.to raise_error(ProcessShared::ProcessError)
      expect(rw.with_write_lock { rw.write_locked? }).to be(true)
      expect(rw.write_locked?).to be(false)
      expect { rw.release_write_lock }.to raise_error(ProcessShared::ProcessError)
    end
  end

  describe "ConditionVariable" do
    it "signals a waiter in another process; a wait without a signal times out holding the mutex" do
      mutex = make(:mutex, "cvm")
      cv = make(:condition_variable, "cv")
      flag = make(:atomic_integer, "flag")
      h = handshake
      pid = fork_child do
        mutex.synchronize do
          h.signal
          cv.wait(mutex, 10) until flag.value == 1
          raise "woke without the mutex" unless mutex.owned?
        end
      end
      h.wait
      mutex.synchronize do
        flag.value = 1
        cv.signal
      end
      wait_child(pid)
      mutex.synchronize do
        expect(cv.wait(mutex, 0.05)).to be(false)
        expect(mutex.owned?).to be(true)
      end
    end
  end

  describe "Event, CountDownLatch and Barrier" do
    it "releases waiters in other processes" do
      event = make(:event, "e")
      latch = make(:count_down_latch, "l", 2)
      barrier = make(:barrier, "b", 2)
      expect([event.set?, event.wait(0.01), latch.count, latch.wait(0.01)]).to eq([false, false, 2, false])
      pid = fork_child do
        raise "event" unless event.wait(10)

        latch.count_down
        latch.count_down
        raise "barrier" unless barrier.wait(10)
      end
      event.set
      expect(latch.wait(10)).to be(true)
      expect(barrier.wait(10)).to be(true)
      wait_child(pid)
      expect([event.set?, latch.count]).to eq([true, 0])
      expect(barrier.wait(0.05)).to be(false)
      expect(barrier.broken?).to be(true)
      barrier.reset
      expect(barrier.broken?).to be(false)
    end
  end

  describe "AtomicInteger and Counters" do
    it "do the arithmetic of int64_t and check their arguments" do
      a = make(:atomic_integer, "a", 5)
      expect([a.increment, a.decrement(3), a.compare_and_set(3, 9), a.compare_and_set(3, 1), a.value])
        .to eq([6, 3, true, false, 9])
      expect(a.get_and_set(2**63 - 1)).to eq(9)
      expect(a.increment).to eq(-2**63)
      expect(a.update { |v| v + 5 }).to eq(-2**63 + 5)
      expect { a.increment(2**63) }.to raise_error(RangeError)
      c = make(:counters, "c", 3)
      c.incr(0)
      c.incr(2, 5)
      c[1] = -4
      expect([c.to_a, c[2], c.size, c.decr(2)]).to eq([[1, -4, 5], 5, 3, 4])
      expect { c[3] }.to raise_error(IndexError)
    end

    it "count exactly under 4 processes × 200 increments" do
      a = make(:atomic_integer, "a2")
      c = make(:counters, "c2", 2)
      pids = Array.new(4) do |i|
        fork_child do
          200.times do
            a.increment
            c.incr(i % 2)
          end
        end
      end
      wait_children(pids, timeout: 60)
      expect([a.value, c.to_a]).to eq([800, [400, 400]])
    end
  end

  describe "Queue" do
    it "is a FIFO with Thread::Queue's errors and a max bound" do
      q = make(:queue, "q", max: 2)
      q.push(1)
      q << [2, "two"]
      expect(q.push(3, timeout: 0.05)).to be_nil
      expect { q.push(3, true) }.to raise_error(ThreadError)
      expect([q.size, q.pop, q.pop]).to eq([2, 1, [2, "two"]])
      expect(q.pop(timeout: 0.05)).to be_nil
      expect { q.pop(true) }.to raise_error(ThreadError)
      expect { q.push(proc {}) }.to raise_error(TypeError)
      expect(q.empty?).to be(true)
      q.push(:last)
      q.close
      expect { q.push(1) }.to raise_error(ClosedQueueError)
      expect([q.closed?, q.pop, q.pop]).to eq([true, :last, nil])
    end

    it "pop with a block gives the element back when the block raises" do
      q = make(:queue, "q-block")
      q.push(:a)
      q.push(:b)
      expect { q.pop { |x| raise "failed #{x}" } }.to raise_error(RuntimeError, "failed a")
      expect(q.pop { |x| "done #{x}" }).to eq("done a")
      expect(q.pop).to eq(:b)
      expect(q.pop(timeout: 0.01) { raise "not called" }).to be_nil
    end

    it "passes every element once from 2 producer processes to 2 consumer processes" do
      q = make(:queue, "q2", max: 10)
      sums = make(:atomic_integer, "sum")
      producers = Array.new(2) { |p| fork_child { 1.upto(50) { |i| q.push(p * 1000 + i) } } }
      consumers = Array.new(2) do
        fork_child do
          while (v = q.pop(timeout: 10)) != :stop
            raise "timed out" if v.nil?

            sums.increment(v)
          end
        end
      end
      wait_children(producers, timeout: 60)
      2.times { q.push(:stop) }
      wait_children(consumers, timeout: 60)
      expect(sums.value).to eq(2 * (1..50).sum + 1000 * 50)
    end
  end
end

RSpec.describe "The backends' shared contract" do
  context "on this host (ProcessShared::Local)" do
    let(:backend) { ->(ns) { ProcessShared::Local.new(namespace: ns) } }

    it_behaves_like "the contract of every backend"
  end

  context "on PostgreSQL (ProcessShared::Postgres)", :postgres do
    let(:backend) { ->(ns) { ProcessShared::Postgres.new(PostgresServer.url, namespace: ns) } }

    it_behaves_like "the contract of every backend"
  end
end
