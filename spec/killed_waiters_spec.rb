# frozen_string_literal: true

require "spec_helper"

# Issue 10, point 6: a process SIGKILLed while it waits on a ConditionVariable or in Queue#pop / #push is no
# longer counted by ConditionVariable#waiters / Queue#num_waiting, and leaves the object working. Each child
# tells the parent through a pipe that it is about to wait; the parent then polls until the count shows it
# (bounded), kills it, and polls until the count drops (bounded: 2 s).
RSpec.describe "killed waiters" do
  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  # Poll until the block returns `want` (within `limit` seconds); the last value it returned.
  def poll_for(want, limit)
    deadline = now + limit
    value = yield
    until value == want || now > deadline
      sleep 0.001
      value = yield
    end
    value
  end

  # Fork a child that signals, then runs the block (a wait that does not end); poll until `count` reports
  # `before + 1`, SIGKILL the child and reap it.
  def kill_while_waiting(count, before: 0)
    h = handshake
    pid = fork_child do
      h.signal
      yield
      raise "the wait ended"
    end
    h.wait
    expect(poll_for(before + 1, 10) { count.call }).to eq(before + 1)
    Process.kill(:KILL, pid)
    Process.wait(pid)
  end

  it "ConditionVariable#waiters stops counting a process killed in #wait (Mutex)" do
    mutex = ProcessShared::Mutex.new
    cond = ProcessShared::ConditionVariable.new
    kill_while_waiting(-> { cond.waiters }) { mutex.synchronize { cond.wait(mutex) } }
    expect(poll_for(0, 2) { cond.waiters }).to eq(0)
    # Still a working condition variable: a new waiter is woken by one signal.
    h = handshake
    pid = fork_child do
      mutex.synchronize do
        h.signal
        raise "not woken" unless cond.wait(mutex, 10)
      end
    end
    h.wait
    expect(poll_for(1, 10) { cond.waiters }).to eq(1)
    mutex.synchronize { cond.signal }
    wait_child(pid)
    expect(cond.waiters).to eq(0)
  end

  it "ConditionVariable#waiters stops counting a process killed in #wait with a timeout (Monitor)" do
    mon = ProcessShared::Monitor.new
    cond = ProcessShared::ConditionVariable.new
    kill_while_waiting(-> { cond.waiters }) { mon.synchronize { mon.synchronize { cond.wait(mon, 60) } } }
    expect(poll_for(0, 2) { cond.waiters }).to eq(0)
    expect(mon.synchronize { :ok }).to eq(:ok)
  end

  it "ConditionVariable#waiters counts the live waiters of several processes and threads, not the killed" do
    mutex = ProcessShared::Mutex.new
    cond = ProcessShared::ConditionVariable.new
    go = handshake
    live = fork_child do
      threads = Array.new(2) { Thread.new { mutex.synchronize { cond.wait(mutex, 30) } } }
      go.signal
      threads.each(&:join)
    end
    go.wait
    expect(poll_for(2, 10) { cond.waiters }).to eq(2)
    kill_while_waiting(-> { cond.waiters }, before: 2) { mutex.synchronize { cond.wait(mutex) } }
    expect(poll_for(2, 2) { cond.waiters }).to eq(2)
    expect(Array.new(100) { cond.waiters }.uniq).to eq([2]) # the dead one is not taken off twice
    mutex.synchronize { cond.broadcast }
    wait_child(live)
    expect(cond.waiters).to eq(0)
  end

  it "Queue#num_waiting stops counting a process killed in #pop" do
    q = ProcessShared::Queue.new(capacity: 256)
    kill_while_waiting(-> { q.num_waiting }) { q.pop }
    expect(poll_for(0, 2) { q.num_waiting }).to eq(0)
    q.push(:job)
    expect(q.pop(timeout: 5)).to eq(:job)
  end

  it "Queue#num_waiting stops counting a process killed in #push on a full queue" do
    q = ProcessShared::Queue.new(capacity: 256, max: 1)
    q.push(:first)
    kill_while_waiting(-> { q.num_waiting }) { q.push(:second) }
    expect(poll_for(0, 2) { q.num_waiting }).to eq(0)
    expect([q.size, q.pop(timeout: 5), q.empty?]).to eq([1, :first, true])
  end
end
