# frozen_string_literal: true

RSpec.describe "resources and fork" do
  # Open descriptors, after collecting garbage so that IOs dropped by earlier examples are closed first.
  # The files, shared memory objects and memfds (paths: "/dev/shm/...", "/memfd:...") open now. Sockets,
  # pipes and eventfds are left out: threads of earlier examples (a database connection, an HTTP client,
  # Ruby's own timer) may open or close those meanwhile, and no object of ours is one.
  def open_files
    GC.start
    Dir.children("/proc/self/fd").filter_map do |fd|
      target = File.readlink("/proc/self/fd/#{fd}")
      target if target.start_with?("/")
    rescue Errno::ENOENT
      nil # the descriptor Dir.children itself had open
    end.sort
  end

  def shm_entries
    Dir.exist?("/dev/shm") ? Dir.children("/dev/shm").sort : []
  end

  it "creates 10,000 mutexes without opening a file descriptor or touching /dev/shm" do
    files = open_files
    shm = shm_entries
    mutexes = Array.new(10_000) { ProcessShared::Mutex.new }
    mutexes.each_slice(1000) { |s| s.first.synchronize { nil } }
    expect(open_files - files).to eq([])
    expect(shm_entries).to eq(shm)
    mutexes.each(&:close)
  end

  it "parent and child never hand out the same shared slot after a fork, even slots freed before it" do
    GC.start
    before = Array.new(50) { ProcessShared::Mutex.new }
    keep = before.first
    before.drop(1).each(&:close) # free slots: must not be reused by either side now
    child_ready = handshake
    parent_done = handshake
    pid = fork_child do
      mine = Array.new(200) { ProcessShared::Mutex.new }
      mine.each(&:lock)
      child_ready.signal
      parent_done.wait
      raise "a child mutex was disturbed" unless mine.all?(&:owned?)
    end
    child_ready.wait
    ours = Array.new(200) { ProcessShared::Mutex.new }
    expect(ours.none?(&:locked?)).to be(true) # a slot shared with the child would show its lock
    ours.each(&:lock)
    parent_done.signal
    wait_child(pid)
    expect(ours.all?(&:owned?)).to be(true)
    expect(keep).not_to be_locked
  end

  it "packs primitives into shared arena chunks: 20,000 of them add few mappings" do
    maps = -> { File.readlines("/proc/self/maps").size }
    before = maps.call
    objs = Array.new(20_000) { ProcessShared::Mutex.new }
    # 64 KiB chunks of 64-byte slots: about 20, plus whatever Ruby's heap maps to hold 20,000 objects (a
    # mapping per object would add 20,000).
    expect(maps.call - before).to be < 200
    objs.each(&:close)
  end

  it "packs semaphores (4 KiB each, with their holder tables) 16 to a chunk" do
    maps = -> { File.readlines("/proc/self/maps").size }
    before = maps.call
    objs = Array.new(2_000) { ProcessShared::Semaphore.new(0) }
    expect(maps.call - before).to be < (2_000 / 16) + 100
    objs.each(&:close)
  end

  it "creates every kind of object without a file descriptor" do
    files = open_files
    objs = Array.new(100) do
      [ProcessShared::Semaphore.new, ProcessShared::BinarySemaphore.new, ProcessShared::Mutex.new,
       ProcessShared::ConditionVariable.new, ProcessShared::Monitor.new, ProcessShared::SharedMemory.new(64),
       ProcessShared::SharedArray.new(:int, 4)]
    end
    expect(open_files - files).to eq([])
    objs.flatten.each(&:close)
  end

  it "a child that exits normally, running finalizers and GC, does not break the parent's objects" do
    mutex = ProcessShared::Mutex.new
    sem = ProcessShared::Semaphore.new(2)
    mem = ProcessShared::SharedMemory.new(:int)
    cond = ProcessShared::ConditionVariable.new
    pid = fork do # a plain fork with a normal exit: at_exit handlers and finalizers run
      mutex.synchronize { mem.put_int(0, 7) }
      sem.wait
      [mutex, sem, mem, cond].each(&:close)
      GC.start
      exit 0
    end
    Process.wait(pid)
    expect($?.success?).to be(true)
    GC.start
    expect(mem.get_int(0)).to eq(7)
    expect(sem.value).to eq(1)
    expect(mutex.synchronize { :ok }).to eq(:ok)
    mutex.lock
    expect(cond.wait(mutex, 0.01)).to be(false)
  end

  it "objects dropped and collected in a child leave the parent's copies intact" do
    mem = ProcessShared::SharedMemory.new(:int)
    pid = fork_child do
      ObjectSpace.each_object(ProcessShared::SharedMemory).each(&:close)
      GC.start
    end
    wait_child(pid)
    mem.put_int(0, 5)
    expect(mem.get_int(0)).to eq(5)
  end

  it "hooks Process._fork so the child knows its own pid (ownership is per process)" do
    expect(Process.singleton_class.ancestors).to include(ProcessShared::ForkHook)
    mutex = ProcessShared::Mutex.new
    mutex.lock
    r, w = IO.pipe
    pid = fork_child do
      r.close
      w.write(mutex.owned? ? "owned" : "not-owned")
      mutex2 = ProcessShared::Mutex.new
      mutex2.lock
      w.write(mutex2.owner_pid == Process.pid ? " mine" : " wrong")
      w.close
    end
    w.close
    expect(r.read).to eq("not-owned mine")
    wait_child(pid)
  end

  it "works through IO.popen(\"-\") and Process.fork too" do
    mutex = ProcessShared::Mutex.new
    io = IO.popen("-")
    if io.nil?
      mutex.lock
      print mutex.owner_pid == Process.pid
      mutex.unlock
      exit!(0)
    end
    expect(io.read).to eq("true")
    io.close
    pid = Process.fork { exit!(mutex.try_lock && mutex.owner_pid == Process.pid ? 0 : 1) }
    Process.wait(pid)
    expect($?.exitstatus).to eq(0)
  end

  it "hooks Process.daemon too: the daemon owns what it locks" do
    mutex = ProcessShared::Mutex.new
    r, w = IO.pipe
    pid = fork_child do
      r.close
      Process.daemon(true, true)
      mutex.lock
      w.write(mutex.owner_pid == Process.pid && mutex.owned? ? "ok" : "wrong")
      mutex.unlock
      w.close
    end
    w.close
    wait_child(pid)
    expect(r.read).to eq("ok")
  end

  # Found by an independent review: the lock's memory used to be unmapped when the waiting call returned,
  # and the thread-end hook then wrote to it. Each case runs in a child, so a crash fails the example.
  {
    "Mutex#lock" => [-> { ProcessShared::Mutex.new }, :lock, :lock, :unlock],
    "Monitor#enter" => [-> { ProcessShared::Monitor.new }, :enter, :enter, :exit],
    "ReadWriteLock#acquire_read_lock" => [-> { ProcessShared::ReadWriteLock.new }, :acquire_write_lock,
                                          :acquire_read_lock, :release_write_lock],
    "ReadWriteLock#acquire_write_lock" => [-> { ProcessShared::ReadWriteLock.new }, :acquire_write_lock,
                                           :acquire_write_lock, :release_write_lock]
  }.each do |name, (make, hold, take, release)|
    it "a lock closed while #{name} waits, then taken, and its thread ending holding it: no crash, " \
       "nothing freed under the holder (lifecycle)" do
      wait_child(fork_child do
        lock = make.call
        held = handshake
        holder = fork_child do
          lock.public_send(hold)
          held.signal
          sleep 0.3
          lock.public_send(release)
        end
        held.wait
        t = Thread.new { lock.public_send(take) }
        sleep 0.001 until t.status == "sleep"
        lock.close
        t.join(10) or raise "the waiter never got the lock"
        GC.start # collects nothing that is held
        other = Array.new(50) { ProcessShared::Mutex.new } # would reuse a freed slot
        other.each { |m| m.synchronize { nil } }
        wait_child(holder)
      end)
    end
  end

  it "stays correct when objects are created and dropped under GC.stress" do
    GC.stress = true
    begin
      5.times do
        m = ProcessShared::Mutex.new
        m.synchronize { ProcessShared::Semaphore.new(1).wait }
        ProcessShared::Monitor.new.synchronize { nil }
      end
    ensure
      GC.stress = false
    end
    GC.start
  end
end
