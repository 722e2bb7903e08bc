# frozen_string_literal: true

require "rbconfig"

# Issue 10, point 8: the stress suite across pid namespaces. Unrelated processes (spawned, not forked), half
# of them each in a pid namespace of its own (as in containers), share named locks and a named semaphore
# while a killer SIGKILLs them at random. A lock taken from a live holder in another namespace, or a dead
# holder not reported, shows as a violation; a dead holder never taken over shows as a hang; a dead
# holder's semaphore permit not given back shows at the end.
#
# Each lock guards a section of the named SharedArray: [a, b, active, old, inside]. A holder sets `inside`,
# journals `old` and `active`, increments `a` and then `b`, clears both flags. Whoever takes the lock with
# OwnerDeadError rolls an active update back; finding `inside` or `active` set without OwnerDeadError is a
# violation (another process holds it too, or a death was not reported).
module StressNamespacesSpec
  SCALE = Float(ENV.fetch("STRESS_SCALE", "1"))
  DURATION = 6.0 * SCALE
  WORKERS = 4 # even slots run in a pid namespace of their own, odd ones in ours
  LOCKS = %w[mutex monitor rwlock].freeze
  SECTION = 5
  VIOLATIONS = LOCKS.size * SECTION
  BEATS = VIOLATIONS + 1
  STOP = BEATS + WORKERS
  CELLS = STOP + 1
  PERMITS = 2
  LIB = File.expand_path("../lib", __dir__)
  PID_NS = %w[unshare --pid --fork --kill-child --mount-proc].freeze

  WORKER = <<~RUBY.freeze
    pre = ENV.fetch("PS_PREFIX")
    slot = Integer(ENV.fetch("PS_SLOT"))
    rng = Random.new(Integer(ENV.fetch("PS_SEED")))
    d = ProcessShared::SharedArray.new(:int64, #{CELLS}, name: "\#{pre}.data")
    sem = ProcessShared::Semaphore.new(#{PERMITS}, name: "\#{pre}.sem")
    locks = {
      "mutex" => ProcessShared::Mutex.new(name: "\#{pre}.mutex"),
      "monitor" => ProcessShared::Monitor.new(name: "\#{pre}.monitor"),
      "rwlock" => ProcessShared::ReadWriteLock.new(name: "\#{pre}.rwlock")
    }
    take = {
      "mutex" => [->(l) { l.lock }, ->(l) { l.unlock }],
      "monitor" => [->(l) { l.enter }, ->(l) { l.exit }],
      "rwlock" => [->(l) { l.acquire_write_lock }, ->(l) { l.release_write_lock }]
    }
    $stdout.puts "ready"
    $stdout.flush
    until d[#{STOP}] != 0
      i = rng.rand(#{LOCKS.size})
      name = #{LOCKS.inspect}[i]
      lock = locks[name]
      base = i * #{SECTION}
      dead = false
      begin
        take[name][0].call(lock)
      rescue ProcessShared::OwnerDeadError
        dead = true
      end
      if d[base + 4] != 0 || d[base + 2] != 0
        if dead
          if d[base + 2] != 0
            d[base] = d[base + 3]
            d[base + 1] = d[base + 3]
            d[base + 2] = 0
          end
          d[base + 4] = 0
        else
          d[#{VIOLATIONS}] += 1
        end
      end
      d[#{VIOLATIONS}] += 1 if d[base] != d[base + 1]
      d[base + 4] = 1
      d[base + 3] = d[base]
      d[base + 2] = 1
      d[base] += 1
      sleep(rng.rand * 0.002) if rng.rand < 0.3 # long enough to be killed in the middle, often
      d[base + 1] += 1
      d[base + 2] = 0
      d[base + 4] = 0
      take[name][1].call(lock)
      sem.synchronize { sleep(rng.rand * 0.002) } if rng.rand < 0.3
      d[#{BEATS} + slot] += 1
    end
  RUBY
end

RSpec.describe "stress: named objects across pid namespaces, with SIGKILLs (issue 10, point 8)", :stress do
  m = StressNamespacesSpec
  let(:prefix) { "spec.nsstress.#{Process.pid}.#{rand(1 << 30)}" }

  before do
    skip "needs root and unshare" unless Process.uid.zero? && system("unshare --pid --fork true", err: File::NULL)
  end

  after do
    (@workers || {}).each_value { |pid, out| kill_worker(pid, out) }
    Dir["/dev/shm/process_shared.#{prefix}*"].each { |f| File.unlink(f) }
  end

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def spawn_worker(slot, seed)
    out_r, out_w = IO.pipe
    env = { "PS_PREFIX" => prefix, "PS_SLOT" => slot.to_s, "PS_SEED" => seed.to_s }
    ns = StressNamespacesSpec
    cmd = (slot.even? ? ns::PID_NS : []) + [RbConfig.ruby, "-I", ns::LIB, "-rprocess_shared", "-e", ns::WORKER]
    pid = Process.spawn(env, *cmd, out: out_w, err: $stderr)
    out_w.close
    raise "worker #{slot} did not start within 20 s" unless out_r.wait_readable(20) && out_r.gets == "ready\n"

    [pid, out_r]
  end

  # SIGKILL: for a namespaced worker, its `unshare` (which takes the worker, pid 1 inside, with it).
  def kill_worker(pid, out)
    out.close unless out.closed?
    Process.kill(:KILL, pid)
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  it "keeps every section exact, never hands a live holder's lock to another namespace, gives permits back",
     timeout: (m::DURATION * 3) + 90 do
    seed = Integer(ENV.fetch("STRESS_SEED") { Random.new_seed % (2**31) })
    $stdout.puts "\nstress (pid namespaces): seed #{seed} (replay: STRESS_SEED=#{seed}), scale #{m::SCALE}"
    rng = Random.new(seed)
    d = ProcessShared::SharedArray.new(:int64, m::CELLS, name: "#{prefix}.data")
    sem = ProcessShared::Semaphore.new(m::PERMITS, name: "#{prefix}.sem")
    spawned = 0
    @workers = (0...m::WORKERS).to_h { |slot| [slot, spawn_worker(slot, seed + (spawned += 1))] }
    kills = 0
    deadline = now + m::DURATION
    while now < deadline
      sleep(0.05 + (rng.rand * 0.2))
      @workers.each do |slot, (pid, _)|
        _, status = Process.waitpid2(pid, Process::WNOHANG)
        raise "worker #{slot} ended on its own: #{status.inspect}" if status
      end
      victim = rng.rand(m::WORKERS)
      kill_worker(*@workers[victim])
      kills += 1
      @workers[victim] = spawn_worker(victim, seed + (spawned += 1))
    end

    beats_before = (0...m::WORKERS).map { |slot| d[m::BEATS + slot] }
    d[m::STOP] = 1
    stop_by = now + 20
    @workers.each do |slot, (pid, out)|
      sleep 0.05 until (status = Process.waitpid2(pid, Process::WNOHANG)&.last) || now > stop_by
      raise "worker #{slot} did not stop within 20 s (hung); cells #{d.to_a}" unless status

      expect(status.success?).to be(true), "worker #{slot} did not stop cleanly: #{status.inspect}"
      out.close
    end
    @workers = {}

    report = "seed #{seed}; #{kills} kills; cells #{d.to_a}"
    locks = [ProcessShared::Mutex.new(name: "#{prefix}.mutex"), ProcessShared::Monitor.new(name: "#{prefix}.monitor"),
             ProcessShared::ReadWriteLock.new(name: "#{prefix}.rwlock")]
    tries = [->(l) { l.try_lock(5) }, ->(l) { l.try_enter(5) }, ->(l) { l.try_write_lock(5) }]
    locks.each_with_index do |lock, i|
      base = i * m::SECTION
      dead = begin
        expect(tries[i].call(lock)).to be(true), "#{m::LOCKS[i]} not taken within 5 s; #{report}"
        false
      rescue ProcessShared::OwnerDeadError
        true
      end
      if dead && d[base + 2] != 0
        d[base] = d[base + 3]
        d[base + 1] = d[base + 3]
      end
      expect(d[base]).to eq(d[base + 1]), report
      expect(d[base]).to be > 0, report
    end
    $stdout.puts "stress (pid namespaces): #{kills} SIGKILLs, #{beats_before.sum} sections, " \
                 "#{d[m::VIOLATIONS]} violations"
    expect(d[m::VIOLATIONS]).to eq(0), report
    expect(kills).to be >= 10 * m::SCALE, report
    expect(beats_before.sum).to be > 100 * m::SCALE, report
    # Every worker is gone: the permits of those killed inside `synchronize` come back within a second.
    t = now
    m::PERMITS.times { sem.try_wait(2) }
    expect(now - t).to be < 1.5, report
    sem.take_reclaimed
    m::PERMITS.times { sem.post }
    expect(sem.value).to eq(m::PERMITS), report
  end
end
