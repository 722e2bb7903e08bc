# frozen_string_literal: true

require "rbconfig"

# Owner identity across the environments users run in (issue 10, point 2): a lock is taken over only when
# its owner is provably dead, whether holder and waiter share a pid namespace or not, whether /proc shows
# the holder or not (hidepid), and a stopped holder is alive. And permits of the dead come back (point 3).
module OwnerIdentitySpec
  LIB = File.expand_path("../lib", __dir__)
  PID_NS = %w[unshare --pid --fork --kill-child --mount-proc].freeze
  # A private /proc with hidepid=2, and the process run as nobody: it cannot see root's processes.
  HIDEPID = ["unshare", "-m", "--", "sh", "-c",
             'mount -t proc -o hidepid=2 proc /proc && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"',
             "sh"].freeze

  # name, how a holder takes it, how a waiter tries without waiting and with a timeout
  LOCKS = {
    "Mutex" => ["lock", "try_lock", "try_lock(0.6)"],
    "Monitor" => ["enter", "try_enter", "try_enter(0.6)"],
    "ReadWriteLock" => ["acquire_write_lock", "try_write_lock", "try_write_lock(0.6)"]
  }.freeze
end

RSpec.describe "owner identity" do
  let(:prefix) { "spec.ident.#{Process.pid}.#{rand(1 << 30)}" }

  before do
    skip "needs root and unshare" unless Process.uid.zero? && system("unshare --pid --fork true", err: File::NULL)
  end

  after do
    @procs&.each do |pid, *ios|
      ios.each { |io| io.close unless io.closed? }
      Process.kill(:KILL, pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
    Dir["/dev/shm/process_shared.#{prefix}*"].each { |f| File.unlink(f) }
  end

  # Runs Ruby code (library loaded) under the command prefix; returns [pid, stdout reader, stdin writer].
  def start(prefix_cmd, code)
    out_r, out_w = IO.pipe
    in_r, in_w = IO.pipe
    pid = Process.spawn(*prefix_cmd, RbConfig.ruby, "-I", OwnerIdentitySpec::LIB, "-rprocess_shared", "-e", code,
                        out: out_w, in: in_r, err: $stderr)
    out_w.close
    in_r.close
    (@procs ||= []) << [pid, out_r, in_w]
    [pid, out_r, in_w]
  end

  def line(io, timeout: 20)
    raise "no answer within #{timeout}s" unless io.wait_readable(timeout)

    io.gets&.chomp
  end

  # Output of a process run to its end.
  def run(prefix_cmd, code)
    pid, out, = start(prefix_cmd, code)
    text = line(out)
    _, status = Process.wait2(pid)
    expect(status.success?).to be(true), "#{prefix_cmd.first} ruby failed: #{status.inspect}"
    text
  end

  def open_code(klass, name)
    "l = ProcessShared::#{klass}.new(name: #{name.inspect}, mode: 0o666)"
  end

  # A holder that takes the lock, says so, and holds it until its stdin closes.
  def holder_code(klass, name, take)
    "#{open_code(klass, name)}; l.#{take}; puts 'held'; $stdout.flush; $stdin.read; puts 'done'"
  end

  def waiter_code(klass, name, try, try_timed)
    <<~RUBY
      #{open_code(klass, name)}
      a = begin; l.#{try}; rescue ProcessShared::OwnerDeadError; :taken_over; end
      b = begin; l.#{try_timed}; rescue ProcessShared::OwnerDeadError; :taken_over; end
      puts [a, b].inspect
    RUBY
  end

  OwnerIdentitySpec::LOCKS.each do |klass, (take, try, try_timed)|
    describe "a named #{klass}" do
      let(:name) { "#{prefix}.#{klass}" }

      it "held in another pid namespace is not taken by a waiter outside it, and is once the holder dies" do
        pid, out, = start(OwnerIdentitySpec::PID_NS, holder_code(klass, name, take))
        expect(line(out)).to eq("held")
        expect(run([], waiter_code(klass, name, try, try_timed))).to eq("[false, false]")
        Process.kill(:KILL, pid) # unshare --kill-child: the holder (pid 1 inside) dies with it
        Process.wait(pid)
        taker = "#{open_code(klass, name)}; p(begin; l.#{try}; rescue ProcessShared::OwnerDeadError; :taken_over; end)"
        expect(run([], taker)).to eq(":taken_over")
      end

      it "held outside is not taken by a waiter in a pid namespace, nor under hidepid by another user" do
        pid, out, stdin = start([], holder_code(klass, name, take))
        expect(line(out)).to eq("held")
        expect(run(OwnerIdentitySpec::PID_NS, waiter_code(klass, name, try, try_timed))).to eq("[false, false]")
        expect(run(OwnerIdentitySpec::HIDEPID, waiter_code(klass, name, try, try_timed))).to eq("[false, false]")
        stdin.close
        expect(line(out)).to eq("done")
        Process.wait(pid)
      end

      it "held by a stopped process is never taken" do
        pid, out, stdin = start([], holder_code(klass, name, take))
        expect(line(out)).to eq("held")
        Process.kill(:STOP, pid)
        begin
          expect(run([], waiter_code(klass, name, try, try_timed.sub("0.6", "1.5")))).to eq("[false, false]")
        ensure
          Process.kill(:CONT, pid)
        end
        stdin.close
        expect(line(out)).to eq("done")
        Process.wait(pid)
      end
    end
  end

  # The stranded-lock race: the holder dies; several processes race to take it over. Exactly one learns of
  # the death, and the lock keeps working for everyone (it used to be stranded in ~1 of 5 rounds).
  it "a dead holder's mutex is taken over by exactly one of several racing processes, never stranded" do
    rounds = Integer(ENV.fetch("RACE_ROUNDS", 40))
    rounds.times do |round|
      m = ProcessShared::Mutex.new
      told = ProcessShared::AtomicInteger.new(0)
      got = ProcessShared::AtomicInteger.new(0)
      holder = fork_child { m.lock && exit!(0) } # ends holding it: dead owner
      wait_child(holder)
      racers = Array.new(3) do
        fork_child do
          begin
            m.try_lock(5) && got.increment
          rescue ProcessShared::OwnerDeadError
            told.increment
            got.increment
          end
          m.unlock
        end
      end
      wait_children(racers, timeout: 20)
      expect([round, told.value, got.value]).to eq([round, 1, 3])
      expect(m.try_lock).to be(true)
      m.unlock
    end
  end

  describe ProcessShared::Semaphore do
    it "gives back the permits of workers SIGKILLed inside #synchronize within 1 s, and says so once" do
      sem = described_class.new(2)
      h = handshake
      workers = Array.new(2) { fork_child { sem.synchronize { h.signal && sleep } } }
      2.times { h.wait }
      expect(sem.value).to eq(0)
      expect { sem.try_wait }.to raise_error(Errno::EAGAIN) # alive: kept
      workers.each do |pid|
        Process.kill(:KILL, pid)
        Process.wait(pid)
      end
      t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      sem.try_wait(2) # a waiter learns of the death within a slice
      sem.try_wait(2)
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t).to be < 1.0
      expect(sem.take_reclaimed).to eq(2)
      expect(sem.take_reclaimed).to eq(0)
      sem.post
      sem.post
      expect(sem.value).to eq(2)
    end

    it "gives back a dead worker's undoable wait to a try_wait without a timeout, within 1 s" do
      sem = ProcessShared::BinarySemaphore.new(1)
      h = handshake
      worker = fork_child do
        sem.wait(undo: true)
        h.signal
        sleep
      end
      h.wait
      Process.kill(:KILL, worker)
      Process.wait(worker)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 1.0
      taken = false
      until taken || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        taken = begin
          sem.try_wait
          true
        rescue Errno::EAGAIN
          false
        end
      end
      expect(taken).to be(true)
    end

    it "does not give back a plain wait's permit (consumed), nor take back a producer's post" do
      sem = described_class.new(0)
      h = handshake
      consumer = fork_child do
        sem.wait
        h.signal
        sleep
      end
      producer = fork_child do
        sem.post
        h.signal
        sleep
      end
      2.times { h.wait }
      [consumer, producer].each do |pid|
        Process.kill(:KILL, pid)
        Process.wait(pid)
      end
      sem.post
      expect { sem.try_wait(0.3) }.not_to raise_error
      expect { sem.try_wait(0.3) }.to raise_error(Errno::ETIMEDOUT)
      expect(sem.take_reclaimed).to eq(0)
    end

    it "is not counted among the waiters once a waiter is SIGKILLed" do
      sem = described_class.new(0)
      h = handshake
      waiter = fork_child do
        h.signal
        sem.wait(undo: true)
      end
      h.wait
      Timeout.timeout(5) { sleep 0.01 until sem.waiters == 1 }
      Process.kill(:KILL, waiter)
      Process.wait(waiter)
      Timeout.timeout(2) { sleep 0.05 until sem.waiters.zero? }
      expect(sem.waiters).to eq(0)
    end
  end
end
