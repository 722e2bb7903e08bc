# frozen_string_literal: true

require "rbconfig"

# Named objects shared by unrelated processes (spawned, not forked).
RSpec.describe "named objects" do
  let(:prefix) { "spec.#{Process.pid}.#{rand(1 << 30)}" }

  after do
    Dir["/dev/shm/process_shared.#{prefix}*"].each { |f| File.unlink(f) }
  end

  # Runs Ruby code in a fresh process (not a fork) with the library loaded; returns its stdout.
  def spawn_ruby(code, timeout: 20)
    lib = File.expand_path("../lib", __dir__)
    r, w = IO.pipe
    pid = Process.spawn(RbConfig.ruby, "-I", lib, "-rprocess_shared", "-e", code, out: w)
    w.close
    raise "no answer within #{timeout}s" unless r.wait_readable(timeout)

    out = r.read
    _, status = Process.wait2(pid)
    expect(status.success?).to be(true), "spawned process failed: #{status.inspect}"
    out
  ensure
    r&.close
  end

  it "gives unrelated processes the same objects" do
    name = "#{prefix}.counter"
    hits = ProcessShared::AtomicInteger.new(100, name: name)
    lock = ProcessShared::Mutex.new(name: "#{prefix}.lock")
    cells = ProcessShared::AtomicInteger.new(0, name: "#{prefix}.unsafe")
    code = <<~RUBY
      hits = ProcessShared::AtomicInteger.new(0, name: "#{name}", create: :open_only)
      lock = ProcessShared::Mutex.new(name: "#{prefix}.lock")
      cells = ProcessShared::AtomicInteger.new(name: "#{prefix}.unsafe")
      500.times do
        hits.increment
        lock.synchronize { v = cells.value; cells.value = v + 1 }
      end
      print :ok
    RUBY
    threads = Array.new(3) { Thread.new { spawn_ruby(code) } }
    expect(threads.map(&:value)).to eq(%w[ok ok ok])
    expect(hits.value).to eq(100 + 1_500) # the creator's initial value, once
    expect(cells.value).to eq(1_500)      # the named mutex excluded them
    expect(lock).not_to be_locked
  end

  it "creates a name once even when processes race to create it" do
    name = "#{prefix}.race"
    code = <<~RUBY
      a = ProcessShared::AtomicInteger.new(1000, name: "#{name}")
      a.increment
      print :ok
    RUBY
    expect(Array.new(4) { Thread.new { spawn_ruby(code) } }.map(&:value)).to all(eq("ok"))
    expect(ProcessShared::AtomicInteger.new(name: name, create: :open_only).value).to eq(1004)
  end

  it "honours create:, and refuses another class or layout" do
    name = "#{prefix}.sem"
    expect { ProcessShared::Semaphore.new(name: name, create: :open_only) }.to raise_error(Errno::ENOENT)
    sem = ProcessShared::Semaphore.new(2, name: name, create: :create_only)
    expect { ProcessShared::Semaphore.new(name: name, create: :create_only) }.to raise_error(Errno::EEXIST)
    expect(ProcessShared::Semaphore.new(0, name: name).value).to eq(2) # the creator's value counts
    expect { ProcessShared::Mutex.new(name: name) }
      .to raise_error(ProcessShared::IncompatibleError, /is a ProcessShared::Semaphore, not a ProcessShared::Mutex/)
    expect { ProcessShared::BinarySemaphore.new(name: name) }.to raise_error(ProcessShared::IncompatibleError)
    ProcessShared::Barrier.new(3, name: "#{prefix}.bar")
    expect { ProcessShared::Barrier.new(4, name: "#{prefix}.bar") }
      .to raise_error(ProcessShared::IncompatibleError, /3 parties/)
    sem.wait
    expect(ProcessShared::Semaphore.new(name: name).value).to eq(1)
  end

  it "names every class: memory, counters, readers-writer locks and queues too" do
    mem = ProcessShared::SharedMemory.new(64, name: "#{prefix}.mem")
    mem.write_object(%w[from parent])
    jobs = ProcessShared::Queue.new(capacity: 256, max: 4, name: "#{prefix}.jobs")
    stats = ProcessShared::Counters.new(2, name: "#{prefix}.stats")
    rw = ProcessShared::ReadWriteLock.new(name: "#{prefix}.rw")
    code = <<~RUBY
      mem = ProcessShared::SharedMemory.new(64, name: "#{prefix}.mem", create: :open_only)
      jobs = ProcessShared::Queue.new(capacity: 256, max: 4, name: "#{prefix}.jobs", create: :open_only)
      stats = ProcessShared::Counters.new(2, name: "#{prefix}.stats")
      rw = ProcessShared::ReadWriteLock.new(name: "#{prefix}.rw")
      rw.with_read_lock { stats.incr(1) if mem.read_object == %w[from parent] }
      while (job = jobs.pop)
        stats.incr(0, job)
      end
      print :ok
    RUBY
    consumer = Thread.new { spawn_ruby(code) }
    (1..10).each { |i| jobs.push(i) }
    jobs.close
    expect(consumer.value).to eq("ok")
    expect(stats.to_a).to eq([55, 1])
    expect(rw.try_write_lock).to be(true)
    rw.release_write_lock
    expect { ProcessShared::SharedMemory.new(128, name: "#{prefix}.mem") }
      .to raise_error(ProcessShared::IncompatibleError, /64/)
    expect { ProcessShared::SharedArray.new(:int, 16, name: "#{prefix}.mem") }
      .to raise_error(ProcessShared::IncompatibleError, /is a ProcessShared::SharedMemory/)
    expect { ProcessShared::Counters.new(3, name: "#{prefix}.stats") }.to raise_error(ProcessShared::IncompatibleError)
    expect { ProcessShared::Queue.new(capacity: 256, name: "#{prefix}.jobs") }
      .to raise_error(ProcessShared::IncompatibleError, /max 4/)
    expect(ProcessShared::Queue.exist?("#{prefix}.jobs")).to be(true)
  end

  # Layouts of an earlier version (before the condition variables had their tables of waiters): a
  # ConditionVariable of 16 bytes is refused by its size; a Queue of the 256-byte header may have the same
  # length as one of ours with a smaller capacity, and is refused by its format word (0 there).
  it "refuses named ConditionVariables and Queues of the earlier layout" do
    cv_path = "/dev/shm/process_shared.#{prefix}.oldcv"
    ProcessShared::ConditionVariable.new(name: "#{prefix}.oldcv").close
    File.open(cv_path, "r+b") { |f| f.pwrite([16].pack("Q<"), 16) } # the header's payload_len
    expect { ProcessShared::ConditionVariable.new(name: "#{prefix}.oldcv") }
      .to raise_error(ProcessShared::IncompatibleError, /ConditionVariable of 16 bytes, not of 256/)
    q_path = "/dev/shm/process_shared.#{prefix}.oldq"
    ProcessShared::Queue.new(capacity: 256, name: "#{prefix}.oldq").close
    File.open(q_path, "r+b") { |f| f.pwrite([0].pack("L<"), 64 + 24) } # the queue's format word
    before = File.binread(q_path)
    expect { ProcessShared::Queue.new(capacity: 256, name: "#{prefix}.oldq") }
      .to raise_error(ProcessShared::IncompatibleError, /queue format 0, not 2 .*left alone/)
    expect(File.binread(q_path)).to eq(before)
  end

  it "refuses a file that is not ours, and never shrinks one (independent review)" do
    path = "/dev/shm/process_shared.#{prefix}.foreign"
    File.binwrite(path, Random.new(1).bytes(8192))
    expect { ProcessShared::Semaphore.new(3, name: "#{prefix}.foreign", create: :open_only) }
      .to raise_error(ProcessShared::IncompatibleError, /not a process_shared object/)
    expect(File.size(path)).to eq(8192)
    mem = ProcessShared::SharedMemory.new(100_000, name: "#{prefix}.big")
    mem.put_bytes(50_000, "hello")
    File.open("/dev/shm/process_shared.#{prefix}.big", "r+b") { |f| f.write("\0" * 64) } # header wiped
    expect { ProcessShared::Mutex.new(name: "#{prefix}.big", create: :open_only) }.to raise_error(Errno::ENOENT)
    expect(mem.get_bytes(50_000, 5)).to eq("hello") # not cut short under us
  end

  it "waits for a creator holding the object's lock with the GVL released, interruptibly" do
    name = "#{prefix}.slow"
    ProcessShared::Mutex.new(name: name)
    File.open("/dev/shm/process_shared.#{name}") do |f|
      f.flock(File::LOCK_EX) # as a creator still initialising it would
      opener = Thread.new do
        ProcessShared::Mutex.new(name: name)
        :opened
      rescue RuntimeError => e
        e.message
      end
      sleep 0.001 until opener.status == "sleep" # blocked, and we are running: the GVL is released
      opener.raise("interrupt!")
      expect(opener.join(2)&.value).to eq("interrupt!")
      f.flock(File::LOCK_UN)
    end
    expect(ProcessShared::Mutex.new(name: name)).not_to be_locked
  end

  it "sets mode: exactly, whatever the umask" do
    old = File.umask(0o077)
    ProcessShared::Mutex.new(name: "#{prefix}.mode", mode: 0o640)
    expect(File.stat("/dev/shm/process_shared.#{prefix}.mode").mode & 0o777).to eq(0o640)
  ensure
    File.umask(old) if old
  end

  it "validates name:, mode: and create:" do
    expect { ProcessShared::Mutex.new(name: "") }.to raise_error(ArgumentError)
    expect { ProcessShared::Mutex.new(name: "a/b") }.to raise_error(ArgumentError)
    expect { ProcessShared::Mutex.new(name: "x" * 201) }.to raise_error(ArgumentError)
    expect { ProcessShared::Mutex.new(name: :sym) }.to raise_error(TypeError)
    expect { ProcessShared::Mutex.new(name: "#{prefix}.m", mode: 0o1000) }.to raise_error(ArgumentError)
    expect { ProcessShared::Mutex.new(name: "#{prefix}.m", mode: "0600") }.to raise_error(TypeError)
    expect { ProcessShared::Mutex.new(name: "#{prefix}.m", create: :sometimes) }.to raise_error(ArgumentError)
    expect { ProcessShared::Mutex.new(nme: "x") }.to raise_error(ArgumentError)
    expect(Dir["/dev/shm/process_shared.#{prefix}*"]).to be_empty
  end

  it "unlinks and tells whether a name exists; holders keep using an unlinked object" do
    name = "#{prefix}.event"
    expect(ProcessShared::Event.exist?(name)).to be(false)
    ev = ProcessShared::Event.new(name: name, mode: 0o640)
    expect(ProcessShared::Event.exist?(name)).to be(true)
    expect(File.stat("/dev/shm/process_shared.#{name}").mode & 0o777).to eq(0o640)
    expect(ProcessShared::Event.unlink(name)).to be_nil
    expect(ProcessShared::Event.exist?(name)).to be(false)
    expect { ProcessShared::Event.unlink(name) }.to raise_error(Errno::ENOENT)
    ev.set
    expect(ev.set?).to be(true)
    fresh = ProcessShared::Event.new(name: name) # a new object under the old name
    expect(fresh.set?).to be(false)
  end

  it "reports a holder SIGKILLed in another, unrelated process" do
    name = "#{prefix}.owner"
    lock = ProcessShared::Mutex.new(name: name)
    r, w = IO.pipe
    lib = File.expand_path("../lib", __dir__)
    code = "m = ProcessShared::Mutex.new(name: %q(#{name})); m.lock; $stdout.print(:locked); $stdout.flush; sleep"
    pid = Process.spawn(RbConfig.ruby, "-I", lib, "-rprocess_shared", "-e", code, out: w)
    w.close
    expect(r.read(6)).to eq("locked")
    Process.kill(:KILL, pid)
    Process.wait(pid)
    expect { lock.lock }.to raise_error(ProcessShared::OwnerDeadError) { |e| expect(e.pid).to eq(pid) }
    lock.unlock
  ensure
    r&.close
  end
end
