# frozen_string_literal: true

require "spec_helper"

# Reproductions from issue 10 (points 2 and 6): each failed on the code before its fix. Crashes run in a
# forked child, so that a segfault fails the example instead of killing the run.
RSpec.describe "issue 10 regressions" do
  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  it "closing a named Mutex while a thread waits on its ConditionVariable, then ending the thread, does not crash" do
    name = "ps-reg-cv-close-#{Process.pid}"
    pid = fork_child do
      mutex = ProcessShared::Mutex.new(name: name)
      cond = ProcessShared::ConditionVariable.new
      waiting = Thread::Queue.new
      waiter = Thread.new do
        mutex.lock
        waiting << true
        cond.wait(mutex)
      rescue ProcessShared::ClosedError, IOError
        nil
      end
      waiting.pop
      mutex.synchronize { nil } # the waiter has released it: it is asleep on the condition
      mutex.close
      waiter.kill
      waiter.join
      GC.start
      Thread.new { nil }.join # reuses the native thread the waiter ran on
    end
    wait_child(pid)
  ensure
    ProcessShared::Mutex.unlink(name) rescue nil # rubocop:disable Style/RescueModifier
  end

  it "SharedMemory#to_ptr keeps the memory alive after the SharedMemory is dropped and GC runs" do
    begin
      require "ffi"
    rescue LoadError
      skip "the ffi gem is not installed for this Ruby"
    end
    pid = fork_child do
      ptr = ProcessShared::SharedMemory.new(1 << 20).tap { |m| m.put_int32(0, 42) }.to_ptr
      4.times { GC.start(full_mark: true, immediate_sweep: true) }
      raise "read #{ptr.get_int32(0)}" unless ptr.get_int32(0) == 42
    end
    wait_child(pid)
  end

  it "Mutex#sleep interrupted by Thread#raise during the re-lock raises only holding the lock" do
    mutex = ProcessShared::Mutex.new
    asleep = Thread::Queue.new
    sleeper = Thread.new do
      Thread.current.report_on_exception = false
      mutex.lock
      asleep << true
      mutex.sleep
    rescue RuntimeError
      mutex.owned?
    end
    asleep.pop
    sleep 0.01 until sleeper.status == "sleep"
    mutex.lock # the sleeper has unlocked; it will block re-locking once woken
    sleeper.wakeup
    sleep 0.01 until sleeper.status == "sleep" # now blocked in the re-lock
    sleeper.raise("interrupt")
    sleep 0.1
    mutex.unlock
    expect(sleeper.value).to be(true)
  end

  it "ReadWriteLock#try_write_lock while holding a read lock answers false" do
    rw = ProcessShared::ReadWriteLock.new
    rw.acquire_read_lock
    expect(rw.try_write_lock).to be(false)
    expect(rw.try_write_lock(0.05)).to be(false)
    rw.release_read_lock
    rw.acquire_write_lock
    expect(rw.try_write_lock).to be(false)
    rw.release_write_lock
  end

  {
    "an exception" => ->(t) { t.raise("boom") },
    "Thread#kill" => lambda(&:kill)
  }.each do |how, finish|
    it "a thread ended by #{how} while holding a Mutex is noticed by another process" do
      mutex = ProcessShared::Mutex.new
      go = handshake
      holder = Thread.new do
        Thread.current.report_on_exception = false
        mutex.lock
        go.wait
        sleep
      end
      sleep 0.01 until mutex.locked?
      finish.call(holder)
      begin
        holder.join
      rescue RuntimeError
        nil
      end
      r, w = IO.pipe
      pid = fork_child do
        r.close
        begin
          w.write(mutex.try_lock(1.5).to_s)
        rescue ProcessShared::OwnerDeadError
          w.write("dead")
        end
      end
      w.close
      expect(r.read).to eq("dead")
      wait_child(pid)
    end

    it "a thread ended by #{how} while holding a Monitor and a write lock is noticed" do
      mon = ProcessShared::Monitor.new
      rw = ProcessShared::ReadWriteLock.new
      holder = Thread.new do
        Thread.current.report_on_exception = false
        mon.enter
        rw.acquire_write_lock
        sleep
      end
      sleep 0.01 until holder.status == "sleep" && rw.write_locked?
      finish.call(holder)
      begin
        holder.join
      rescue RuntimeError
        nil
      end
      expect { mon.try_enter }.to raise_error(ProcessShared::OwnerDeadError)
      mon.exit
      expect { rw.try_write_lock }.to raise_error(ProcessShared::OwnerDeadError)
      rw.release_write_lock
    end
  end
end

RSpec.describe "ReadWriteLock opened twice by name in one process (found by the named fuzz, seed 905693785)" do
  # Read holds were tracked per handle (by the address of its mapping): a thread reading through one handle
  # then writing through the other waited forever for its own read holds. A name is now mapped once per
  # process, so both handles are the same lock in every respect.
  let(:name) { "regression.rw2.#{Process.pid}" }
  after { File.unlink("/dev/shm/process_shared.#{name}") if File.exist?("/dev/shm/process_shared.#{name}") }

  it "refuses a write lock through one handle while the same thread reads through the other", timeout: 20 do
    a = ProcessShared::ReadWriteLock.new(name: name)
    b = ProcessShared::ReadWriteLock.new(name: name)
    worker = Thread.new do
      Thread.current.report_on_exception = false
      a.acquire_read_lock
      begin
        b.acquire_write_lock
        :acquired
      rescue ProcessShared::ProcessError
        :refused
      ensure
        a.release_read_lock
      end
    end
    result = worker.join(5)&.value # a bound, for the old behaviour: the write never returned
    worker.kill unless result
    expect(result).to eq(:refused)
    expect(b.try_write_lock).to be(true) # the read hold was given back through the other handle's record
    b.release_write_lock
  end

  it "releases through either handle what the thread took through the other" do
    a = ProcessShared::ReadWriteLock.new(name: name)
    b = ProcessShared::ReadWriteLock.new(name: name)
    a.acquire_read_lock
    b.acquire_read_lock # re-entrant, even though it came through another handle
    expect { 2.times { b.release_read_lock } }.not_to raise_error
    expect { a.release_read_lock }.to raise_error(ProcessShared::ProcessError)
    a.close
    expect(b.try_write_lock).to be(true) # closing one handle leaves the other mapped
    b.release_write_lock
  end
end
