# frozen_string_literal: true

require "spec_helper"
require "timeout"
require_relative "support/fiber_scheduler"

# Under Fiber.set_scheduler, a call that has to wait lets the thread's other fibers run, as Thread::Mutex
# and Thread::Queue do: the wait runs in a helper thread that the fiber joins.
module FiberSchedulerCases
  PS = ProcessShared

  # name => [make, what the child does before the parent waits, what it does to let it go, the waiting
  #          call (its value is checked), what the parent does after]
  CASES = {
    "Mutex#lock" => [-> { PS::Mutex.new }, :lock.to_proc, :unlock.to_proc, ->(m) { m.lock }, :unlock.to_proc],
    # The lock taken belongs to the waiting fiber, not to the helper thread or another fiber.
    "Mutex#synchronize" => [-> { PS::Mutex.new }, :lock.to_proc, :unlock.to_proc,
                            ->(m) { m.synchronize { m.owned? && !Fiber.new(blocking: true) { m.owned? }.resume } },
                            ->(_) {}],
    "Monitor#enter" => [-> { PS::Monitor.new }, :enter.to_proc, :exit.to_proc, ->(m) { m.enter || true },
                        :exit.to_proc],
    "Semaphore#wait" => [-> { PS::Semaphore.new(0) }, ->(_) {}, :post.to_proc, ->(s) { s.wait || true }, ->(_) {}],
    "Queue#pop" => [-> { PS::Queue.new }, ->(_) {}, ->(q) { q.push(:item) }, ->(q) { q.pop == :item }, ->(_) {}],
    "Event#wait" => [-> { PS::Event.new }, ->(_) {}, :set.to_proc, ->(e) { e.wait }, ->(_) {}],
    "CountDownLatch#wait" => [-> { PS::CountDownLatch.new(1) }, ->(_) {}, :count_down.to_proc,
                              ->(l) { l.wait || true }, ->(_) {}],
    "ReadWriteLock#acquire_write_lock" => [-> { PS::ReadWriteLock.new }, :acquire_read_lock.to_proc,
                                           :release_read_lock.to_proc, :acquire_write_lock.to_proc,
                                           :release_write_lock.to_proc]
  }.freeze
end

RSpec.describe "Blocking calls under a Fiber scheduler" do
  FiberSchedulerCases::CASES.each do |name, (make, before, release, call, after)|
    it "#{name} waits for another process without stalling the other fibers", timeout: 30 do
      obj = make.call
      holding = handshake
      go = handshake
      pid = fork_child do
        before.call(obj)
        holding.signal
        go.wait(timeout: 20)
        release.call(obj)
      end
      holding.wait
      result = nil
      ticks_before_release = 0
      SpecScheduler.run do
        Fiber.schedule do
          result = call.call(obj)
          after.call(obj) # in the fiber that took it: ownership is per fiber
        end
        Fiber.schedule do
          # Runs only if the waiting fiber gave the thread up: it is still waiting (the child holds on).
          5.times do
            sleep 0.002
            ticks_before_release += 1 unless result
          end
          go.signal
        end
      end
      expect(wait_child(pid)).to be_success
      expect(ticks_before_release).to eq(5)
      expect(result).to be_truthy
    end
  end

  it "ConditionVariable#wait lets another fiber take the lock and signal", timeout: 30 do
    m = ProcessShared::Mutex.new
    cv = ProcessShared::ConditionVariable.new
    woke = false
    SpecScheduler.run do
      Fiber.schedule { m.synchronize { cv.wait(m, 10) && (woke = m.owned?) } }
      Fiber.schedule { m.synchronize { cv.signal } }
    end
    expect(woke).to be(true)
    expect(m.locked?).to be(false)
  end

  it "a Timeout ends the wait and takes nothing; the helper thread is gone", timeout: 30 do
    m = ProcessShared::Mutex.new
    holding = handshake
    go = handshake
    pid = fork_child do
      m.lock
      holding.signal
      go.wait(timeout: 20)
      m.unlock
    end
    holding.wait
    threads = Thread.list.size
    outcome = nil
    SpecScheduler.run do
      Fiber.schedule do
        Timeout.timeout(0.05) { m.lock }
        outcome = :locked
      rescue Timeout::Error
        outcome = :timed_out
      end
    end
    expect(outcome).to eq(:timed_out)
    expect(Thread.list.size).to eq(threads)
    go.signal
    expect(wait_child(pid)).to be_success
    expect(m.try_lock).to be(true) # the interrupted wait did not take it
    m.unlock
  end

  it "Mutex#lock answers as Thread::Mutex#lock does when the thread's own fiber holds it", timeout: 30 do
    ours = ProcessShared::Mutex.new
    theirs = Thread::Mutex.new
    order = []
    SpecScheduler.run do
      [ours, theirs].each do |lock|
        Fiber.schedule do
          lock.lock
          sleep 0.01
          order << [lock.class, :first_unlocks]
          lock.unlock
        end
        Fiber.schedule do
          lock.lock # the other fiber holds it: waits, letting it run and unlock
          order << [lock.class, :second_locks]
          lock.unlock
        end
      end
    end
    expect(order.select { |c, _| c == ProcessShared::Mutex }.map(&:last)).to eq(%i[first_unlocks second_locks])
    expect(order.select { |c, _| c == Thread::Mutex }.map(&:last)).to eq(%i[first_unlocks second_locks])
  end
end
