# frozen_string_literal: true

# A holder SIGKILLed inside its critical section must cost the survivors at most ~1 s and one
# OwnerDeadError. The holder here is a grandchild (its parent exits at once), so we get no SIGCHLD and
# cannot reap it: detection must not depend on being the holder's parent.
RSpec.describe "owner death" do
  # Starts a grandchild that runs the block (which takes a lock), reports its pid, and then hangs in its
  # critical section until killed. Returns the grandchild's pid.
  def doomed_holder(&block)
    r, w = IO.pipe
    middle = fork_child do
      fork_child do
        r.close
        block.call
        w.write([Process.pid].pack("L"))
        w.close
        sleep
      end
    end
    w.close
    wait_child(middle)
    raise "holder did not start" unless r.wait_readable(10)

    pid = r.read(4).unpack1("L")
    r.close
    @doomed = pid
    pid
  end

  def kill(pid)
    Process.kill(:KILL, pid)
  end

  # Waits until every thread of `pid` has exited (we cannot reap it: it is not our child). The leader
  # shows "Z" as soon as it has exited itself, but the process keeps its descriptors (and so its record
  # lock in the owner registry) until its last thread is gone: Ruby 3.3+ always runs a timer thread.
  def wait_until_ended(pid)
    deadline = now + 10
    loop do
      states = Dir.children("/proc/#{pid}/task").map do |tid|
        File.read("/proc/#{pid}/task/#{tid}/stat").split(")").last.split.first
      rescue Errno::ENOENT, Errno::ESRCH
        "X"
      end
      break if states.all? { |s| s.match?(/[ZX]/) }
      raise "#{pid} did not end" if now > deadline

      sleep 0.01
    rescue Errno::ENOENT, Errno::ESRCH
      break
    end
  end

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  after do
    Process.kill(:KILL, @doomed) if @doomed
  rescue Errno::ESRCH
    nil
  end

  describe ProcessShared::Mutex do
    let!(:mutex) { described_class.new }

    it "#lock raises OwnerDeadError holding the lock, naming the dead pid, within 1 s" do
      pid = doomed_holder { mutex.lock }
      kill(pid)
      t = now
      expect { mutex.lock }.to raise_error(ProcessShared::OwnerDeadError) { |e| expect(e.pid).to eq(pid) }
      expect(now - t).to be < 1.0
      expect(mutex).to be_owned
      mutex.unlock
      expect(mutex.synchronize { :normal }).to eq(:normal)
    end

    it "a thread already waiting gets it" do
      pid = doomed_holder { mutex.lock }
      waiter = Thread.new do
        mutex.lock
        :clean
      rescue ProcessShared::OwnerDeadError => e
        [e.pid, mutex.owned?]
      end
      sleep 0.01 until waiter.status == "sleep"
      kill(pid)
      t = now
      expect(waiter.value).to eq([pid, true])
      expect(now - t).to be < 1.0
    end

    it "#try_lock raises it at once; #synchronize unlocks before re-raising" do
      pid = doomed_holder { mutex.lock }
      kill(pid)
      wait_until_ended(pid)
      expect { mutex.try_lock }.to raise_error(ProcessShared::OwnerDeadError)
      expect(mutex).to be_owned
      mutex.unlock
      pid2 = doomed_holder { mutex.lock }
      kill(pid2)
      ran = false
      expect { mutex.synchronize { ran = true } }.to raise_error(ProcessShared::OwnerDeadError) { |e|
                                                       expect(e.pid).to eq(pid2)
                                                     }
      expect(ran).to be(false)
      expect(mutex).not_to be_locked
    end

    it "only one of several survivors gets the error" do
      pid = doomed_holder { mutex.lock }
      results = ProcessShared::SharedArray.new(:int, 3)
      ready = ProcessShared::Semaphore.new(0)
      kids = Array.new(3) do |i|
        fork_child do
          ready.post
          begin
            mutex.synchronize { results[i] = 1 }
          rescue ProcessShared::OwnerDeadError
            results[i] = 2
          end
        end
      end
      3.times { ready.wait }
      kill(pid)
      wait_children(kids)
      expect(results.to_a.sort).to eq([1, 1, 2])
    end

    it "a ConditionVariable waiter relocks and gets OwnerDeadError" do
      cond = ProcessShared::ConditionVariable.new
      waiter = Thread.new do
        mutex.lock
        cond.wait(mutex)
        :clean
      rescue ProcessShared::OwnerDeadError => e
        [e.pid, mutex.owned?]
      end
      sleep 0.01 until waiter.status == "sleep" && !mutex.locked?
      holder = doomed_holder do
        mutex.lock
        cond.signal
      end
      kill(holder)
      t = now
      expect(waiter.value).to eq([holder, true])
      expect(now - t).to be < 1.0
      mutex.unlock if mutex.owned?
    end
  end

  describe "a Ruby thread that ends holding a lock in a live process" do
    it "Mutex: the next acquirer in this process gets OwnerDeadError at once" do
      mutex = ProcessShared::Mutex.new
      Thread.new { mutex.lock }.join
      expect(mutex).to be_locked
      t = now
      expect { mutex.lock }.to raise_error(ProcessShared::OwnerDeadError) { |e| expect(e.pid).to eq(Process.pid) }
      expect(now - t).to be < 1.0
      expect(mutex).to be_owned
      mutex.unlock
      expect(mutex.try_lock).to be(true)
    end

    it "a new thread (on the native thread Ruby recycles) does not inherit the ended thread's ownership" do
      mutex = ProcessShared::Mutex.new
      10.times do
        Thread.new { mutex.lock }.join
        expect(Thread.new { mutex.owned? }.value).to be(false)
        expect do
          Thread.new do
            Thread.current.report_on_exception = false
            mutex.unlock
          end.join
        end
          .to raise_error(ProcessShared::ProcessError)
        expect { mutex.lock }.to raise_error(ProcessShared::OwnerDeadError)
        mutex.unlock
      end
    end

    it "Mutex: a waiter in another process gets OwnerDeadError" do
      mutex = ProcessShared::Mutex.new
      go = handshake
      holder = Thread.new do
        mutex.lock
        go.wait
      end
      sleep 0.01 until mutex.locked?
      r, w = IO.pipe
      pid = fork_child do
        r.close
        begin
          mutex.lock
          w.write("clean")
        rescue ProcessShared::OwnerDeadError => e
          w.write("dead #{e.pid} #{mutex.owned?}")
        end
      end
      w.close
      sleep 0.1 # the child is asleep on the lock
      go.signal
      holder.join # the thread ends holding the lock
      expect(r.read).to eq("dead #{Process.pid} true")
      wait_child(pid)
    end

    it "Monitor: entered twice by a thread that ends" do
      mon = ProcessShared::Monitor.new
      Thread.new do
        mon.enter
        mon.enter
      end.join
      expect { mon.try_enter }.to raise_error(ProcessShared::OwnerDeadError)
      expect(mon.mon_count).to eq(1)
      mon.exit
      expect(mon.mon_locked?).to be(false)
    end

    it "a thread that unlocked before ending leaves nothing behind" do
      mutex = ProcessShared::Mutex.new
      mon = ProcessShared::Monitor.new
      Thread.new do
        mutex.lock
        mutex.unlock
        mon.enter
        mon.exit
        mutex.synchronize { nil }
      end.join
      expect(mutex.try_lock).to be(true)
      expect(mon.try_enter).to be(true)
    end
  end

  describe ProcessShared::ReadWriteLock do
    let!(:rw) { described_class.new }

    it "a waiting reader gets in with OwnerDeadError, as does every reader until a writer repairs" do
      pid = doomed_holder { rw.acquire_write_lock }
      waiter = Thread.new do
        rw.acquire_read_lock
        :clean
      rescue ProcessShared::OwnerDeadError => e
        [e.pid, rw.write_locked?, Thread.new { rw.try_write_lock }.value] # holding a read lock
      ensure
        rw.release_read_lock
      end
      sleep 0.01 until waiter.status == "sleep"
      kill(pid)
      t = now
      expect(waiter.value).to eq([pid, false, false])
      expect(now - t).to be < 1.0
      expect { rw.with_read_lock { :not_run } }.to raise_error(ProcessShared::OwnerDeadError, /pid #{pid}/)
      expect { rw.try_read_lock }.to raise_error(ProcessShared::OwnerDeadError)
      rw.release_read_lock
      expect { rw.acquire_write_lock }.to raise_error(ProcessShared::OwnerDeadError) { |e| expect(e.pid).to eq(pid) }
      rw.release_write_lock # repaired
      expect(rw.with_read_lock { :clean }).to eq(:clean)
      expect(rw.with_write_lock { :clean }).to eq(:clean)
    end

    it "the next writer gets OwnerDeadError holding the write lock; with_write_lock releases first" do
      pid = doomed_holder { rw.acquire_write_lock }
      kill(pid)
      t = now
      expect { rw.acquire_write_lock }.to raise_error(ProcessShared::OwnerDeadError) { |e| expect(e.pid).to eq(pid) }
      expect(now - t).to be < 1.0
      expect(rw.write_locked?).to be(true)
      expect(Thread.new { rw.try_read_lock }.value).to be(false)
      rw.release_write_lock
      pid2 = doomed_holder { rw.acquire_write_lock }
      kill(pid2)
      expect { rw.with_write_lock { nil } }.to raise_error(ProcessShared::OwnerDeadError)
      expect(rw.write_locked?).to be(false)
      expect(rw.with_read_lock { :normal }).to eq(:normal)
    end

    it "read locks of a process killed while reading are released within 1 s, without an error" do
      pid = doomed_holder { 2.times { rw.acquire_read_lock } }
      expect(rw.try_write_lock).to be(false)
      kill(pid)
      t = now
      expect(rw.acquire_write_lock).to be(true)
      expect(now - t).to be < 1.0
      rw.release_write_lock
    end

    it "a thread that ends holding the write lock is reported to readers and the next writer" do
      Thread.new { rw.acquire_write_lock }.join
      expect { rw.acquire_read_lock }.to raise_error(ProcessShared::OwnerDeadError) do |e|
        expect(e.pid).to eq(Process.pid)
      end
      rw.release_read_lock
      expect { rw.with_write_lock { :not_run } }.to raise_error(ProcessShared::OwnerDeadError)
      expect(rw.with_write_lock { :normal }).to eq(:normal)
      expect(rw.with_read_lock { :normal }).to eq(:normal)
    end
  end

  describe ProcessShared::Monitor do
    let!(:mon) { described_class.new }

    it "#enter raises OwnerDeadError holding it once; synchronize exits before re-raising" do
      pid = doomed_holder do
        mon.enter
        mon.enter
      end
      kill(pid)
      t = now
      expect { mon.enter }.to raise_error(ProcessShared::OwnerDeadError) { |e| expect(e.pid).to eq(pid) }
      expect(now - t).to be < 1.0
      expect(mon.mon_owned?).to be(true)
      expect(mon.mon_count).to eq(1)
      mon.exit
      expect(mon.mon_locked?).to be(false)
      pid2 = doomed_holder { mon.enter }
      kill(pid2)
      expect { mon.synchronize { nil } }.to raise_error(ProcessShared::OwnerDeadError)
      expect(mon.mon_locked?).to be(false)
      expect(mon.synchronize { :normal }).to eq(:normal)
    end

    it "a MonitorMixin condition waiter gets OwnerDeadError holding the monitor" do
      cond = mon.new_cond
      waiter = Thread.new do
        mon.synchronize { cond.wait }
        :clean
      rescue ProcessShared::OwnerDeadError => e
        [e.pid, mon.mon_locked?]
      end
      sleep 0.01 until waiter.status == "sleep" && !mon.mon_locked?
      pid = doomed_holder do
        mon.enter
        cond.signal
      end
      kill(pid)
      expect(waiter.value).to eq([pid, false]) # synchronize exited on the way out
    end
  end

  # synchronize(on_owner_dead:) (with_write_lock for a ReadWriteLock): the handler repairs the data holding
  # the lock, then the block runs, and the lock is released after it, as pthread_mutex_consistent users do.
  # The data: two int64s (byte offsets 0 and 8) that every complete update keeps equal; the doomed holder
  # dies half-way through one.
  describe "repairing with on_owner_dead:" do
    mixin_obj = lambda do
      Object.new.extend(ProcessShared::MonitorMixin)
    end
    kinds = {
      "Mutex#synchronize" => { make: -> { ProcessShared::Mutex.new }, take: :lock.to_proc,
                               sync: :synchronize, held: :owned?, locked: :locked? },
      "Monitor#synchronize" => { make: -> { ProcessShared::Monitor.new }, take: ->(m) { 2.times { m.enter } },
                                 sync: :synchronize, held: :mon_owned?, locked: :mon_locked? },
      "MonitorMixin#mon_synchronize" => { make: mixin_obj, take: :mon_enter.to_proc,
                                          sync: :mon_synchronize, held: :mon_owned?, locked: :mon_locked? },
      "ReadWriteLock#with_write_lock" => { make: -> { ProcessShared::ReadWriteLock.new },
                                           take: :acquire_write_lock.to_proc, sync: :with_write_lock,
                                           held: :write_locked?, locked: :write_locked? }
    }

    kinds.each do |title, kind|
      describe title do
        let!(:lock) { kind[:make].call }
        let!(:data) { ProcessShared::SharedMemory.new(:int64, 2) }

        def consistent?
          data.get_int64(0) == data.get_int64(8)
        end

        define_method(:sync) { |**kw, &block| lock.public_send(kind[:sync], **kw, &block) }
        define_method(:held?) { lock.public_send(kind[:held]) }
        define_method(:locked?) { lock.public_send(kind[:locked]) }

        # A holder that dies in the middle of an update.
        define_method(:kill_half_way) do
          pid = doomed_holder do
            kind[:take].call(lock)
            data.put_int64(0, 1)
          end
          kill(pid)
          pid
        end

        it "runs the handler holding the lock, then the block, then releases it" do
          pid = kill_half_way
          calls = []
          repair = lambda do |e|
            calls << [e.class, e.pid, held?, consistent?]
            data.put_int64(8, data.get_int64(0))
          end
          t = now
          out = sync(on_owner_dead: repair) { [held?, consistent?, :block_value] }
          expect(now - t).to be < 1.0
          expect(calls).to eq([[ProcessShared::OwnerDeadError, pid, true, false]])
          expect(out).to eq([true, true, :block_value])
          expect(locked?).to be(false)
          expect(sync(on_owner_dead: ->(_) { calls << :again }) { :clean }).to eq(:clean)
          expect(calls.size).to eq(1) # a lock nobody died holding never calls it
        end

        it "releases the lock and raises what the handler raised, without running the block" do
          kill_half_way
          ran = false
          failing = ->(e) { raise IOError, "cannot repair after #{e.pid}" }
          expect { sync(on_owner_dead: failing) { ran = true } }.to raise_error(IOError, /cannot repair/)
          expect([ran, locked?]).to eq([false, false])
          expect(sync { :usable }).to eq(:usable)
        end

        it "releases the lock when the block raises after a repair" do
          kill_half_way
          expect { sync(on_owner_dead: ->(_) {}) { raise KeyError, "in the block" } }.to raise_error(KeyError)
          expect(locked?).to be(false)
        end

        it "without a handler (or with nil) releases the lock and raises OwnerDeadError, as before" do
          kill_half_way
          expect { sync(on_owner_dead: nil) { :not_run } }.to raise_error(ProcessShared::OwnerDeadError)
          expect(locked?).to be(false)
        end

        it "refuses a handler that is not callable, an unknown keyword and positional arguments" do
          expect { sync(on_owner_dead: 1) { nil } }.to raise_error(TypeError, /respond to #call/)
          expect { sync(on_dead: ->(_) {}) { nil } }.to raise_error(ArgumentError, /on_dead/)
          expect(locked?).to be(false)
        end
      end
    end

    it "refuses positional arguments" do
      m = ProcessShared::Mutex.new
      expect { m.synchronize(1) { nil } }.to raise_error(ArgumentError)
      expect { ProcessShared::Monitor.new.synchronize(->(_) {}) { nil } }.to raise_error(ArgumentError)
      expect(m.locked?).to be(false)
    end
  end
end
