# frozen_string_literal: true

require "spec_helper"

# Issue 11: on Ruby 3.3, killing or raising into threads that wait in ConditionVariable#wait (under
# synchronize or a held lock, timed or not, named or anonymous, the objects sometimes closed meanwhile)
# crashed the interpreter. Runs in a child process, so that a crash is a failed status, not a lost run.
RSpec.describe "ConditionVariable#wait under Thread#kill and Thread#raise" do
  chaos = Class.new(StandardError)

  it "survives 1000 rounds of kills and raises into waiters, the objects sometimes closed", timeout: 180 do
    seed = Integer(ENV.fetch("STRESS_SEED") { Random.new_seed % (2**31) })
    base = "cvkill.#{Process.pid}"
    pid = fork_child do
      rng = Random.new(seed)
      outcomes = Hash.new(0)
      1000.times do |round|
        named = rng.rand < 0.3
        names = named ? [{ name: "#{base}.m#{round % 3}" }, { name: "#{base}.cv#{round % 3}" }] : [{}, {}]
        m = ProcessShared::Mutex.new(**names[0])
        cv = ProcessShared::ConditionVariable.new(**names[1])
        timeout = rng.rand < 0.5 ? 5 : nil
        held = rng.rand < 0.5
        waiting = Thread::Queue.new
        t = Thread.new do
          Thread.current.report_on_exception = false
          if held
            m.lock
            begin
              waiting << true
              cv.wait(m, timeout)
            ensure
              m.unlock if m.owned?
            end
          else
            m.synchronize do
              waiting << true
              cv.wait(m, timeout)
            end
          end
        rescue chaos, ProcessShared::Error
          nil
        end
        # In the wait (or ended: the lock of a named one may have come with OwnerDeadError).
        Thread.pass until !t.alive? || (!waiting.empty? && t.status == "sleep")
        [m, cv].sample(random: rng).close if rng.rand < 0.3
        how = rng.rand < 0.5 ? :kill : :raise
        how == :kill ? t.kill : t.raise(chaos)
        raise "round #{round}: the thread did not end after Thread##{how}" unless t.join(10)

        outcomes[how] += 1
        m.close
        cv.close
      end
      puts "condvar interrupts: seed #{seed}, #{outcomes}"
    ensure
      3.times do |i|
        %w[m cv].each { |k| File.unlink("/dev/shm/process_shared.#{base}.#{k}#{i}") rescue nil } # rubocop:disable Style/RescueModifier
      end
    end
    status = wait_child(pid, timeout: 170)
    expect(status.signaled?).to be(false), "the child died of signal #{status.termsig} (seed #{seed})"
    expect(status).to be_success, "seed #{seed}"
  end

  # Found by bin/soak: a waiter takes a wake-up, returns from its sleep and blocks re-taking the mutex;
  # meanwhile another waiter registers, and an interrupt arrives. `wait` raises it (the lock held again)
  # instead of returning true, so the wake-up must go on to the other waiter, as when the interrupt ends
  # the sleep itself.
  it "passes the wake-up on when an interrupt arrives while a woken waiter re-takes the lock", timeout: 60 do
    mutex = ProcessShared::Mutex.new
    cond = ProcessShared::ConditionVariable.new
    flags = ProcessShared::SharedArray.new(:int, 2) # [the other process signalled, go]
    waiter = Thread.new do
      Thread.current.report_on_exception = false
      mutex.synchronize { cond.wait(mutex) }
      :returned
    rescue chaos
      :interrupted
    end
    Thread.pass until cond.waiters == 1 && waiter.status == "sleep"
    other = fork_child do # holds the mutex while the waiter is woken, then waits as the second waiter
      mutex.lock
      cond.signal
      flags[0] = 1
      nil until flags[1] == 1
      woken = cond.wait(mutex, 20)
      mutex.unlock
      exit!(woken ? 0 : 1)
    end
    # The waiter took the wake-up and now waits for the mutex, which the other process holds.
    Thread.pass until flags[0] == 1 && cond.waiters.zero? && mutex.inspect.include?("waiters=true")
    flags[1] = 1
    limit = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 20
    # Spinning holds the GVL: the waiter, once it has the mutex, cannot return before the raise.
    nil until cond.waiters == 1 || Process.clock_gettime(Process::CLOCK_MONOTONIC) > limit
    waiter.raise(chaos)
    outcome = waiter.value
    cond.signal if outcome == :returned # the GVL came to the waiter first after all: it used the wake-up
    expect(outcome).to eq(:interrupted)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    wait_child(other, timeout: 40) # fails if the second waiter timed out (exit 1)
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 15
  end
end
