# frozen_string_literal: true

require "fileutils"
require "rbconfig"
require "tmpdir"

# Issue 10, point 7: opening a name whose file in /dev/shm is hostile (truncated, of the wrong size, of
# another class, garbage, a symlink, a directory, a FIFO, or someone else's) raises a clear error in every
# class; the opener never dies of a signal or hangs, and the file is left exactly as it was.
# (named_spec.rb covers a random 8 KiB file opened as a Semaphore, and wrong layouts per class.)
module HostileFiles
  PS = ProcessShared

  # Every named class (lib/process_shared/named.rb), with arguments giving a typical layout.
  CTORS = {
    "Mutex" => ->(**o) { PS::Mutex.new(**o) },
    "Monitor" => ->(**o) { PS::Monitor.new(**o) },
    "ConditionVariable" => ->(**o) { PS::ConditionVariable.new(**o) },
    "ReadWriteLock" => ->(**o) { PS::ReadWriteLock.new(**o) },
    "Semaphore" => ->(**o) { PS::Semaphore.new(1, **o) },
    "BinarySemaphore" => ->(**o) { PS::BinarySemaphore.new(**o) },
    "Queue" => ->(**o) { PS::Queue.new(capacity: 256, **o) },
    "Event" => ->(**o) { PS::Event.new(**o) },
    "CountDownLatch" => ->(**o) { PS::CountDownLatch.new(2, **o) },
    "Barrier" => ->(**o) { PS::Barrier.new(2, **o) },
    "AtomicInteger" => ->(**o) { PS::AtomicInteger.new(0, **o) },
    "Counters" => ->(**o) { PS::Counters.new(2, **o) },
    "SharedMemory" => ->(**o) { PS::SharedMemory.new(64, **o) },
    "SharedArray" => ->(**o) { PS::SharedArray.new(:int, 16, **o) }
  }.freeze
  NAMED_SOURCE = File.read(File.expand_path("../lib/process_shared/named.rb", __dir__))
  BOUND = 10 # seconds: an opener taking longer hangs
end

RSpec.describe "hostile files under a name" do
  let(:prefix) { "hostile.#{Process.pid}.#{rand(1 << 30)}" }

  after do
    Dir["/dev/shm/process_shared.#{prefix}*"].each { |f| File.lstat(f).directory? ? Dir.rmdir(f) : File.unlink(f) }
    FileUtils.rm_rf(@tmp) if @tmp
  end

  def path(name) = "/dev/shm/process_shared.#{name}"

  # Everything about the file at +p+ an opener must not change.
  def snapshot(p)
    st = File.lstat(p)
    facts = [st.ftype, st.size, st.mode, st.uid, st.gid, st.ino]
    facts << File.readlink(p) if st.symlink?
    facts << File.binread(p) if st.file?
    facts
  end

  # A genuine object of +klass+ (its bytes and size are what a hostile file imitates), then unlinked.
  def genuine(klass)
    name = "#{prefix}.genuine.#{klass}"
    obj = HostileFiles::CTORS.fetch(klass).call(name: name)
    bytes = File.binread(path(name))
    obj.close
    File.unlink(path(name))
    bytes
  end

  # Opens +name+ as +klass+ in a forked child (at once for every pair); returns, per pair, the child's
  # answer (["ok"] or [exception class, message]) and its exit status. Fails on a child that hangs.
  def open_in_children(pairs, **opts)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    children = pairs.map do |klass, name|
      r, w = IO.pipe
      pid = fork do
        r.close
        answer = begin
          HostileFiles::CTORS.fetch(klass).call(name: name, **opts)
          ["ok"]
        rescue Exception => e
          [e.class.name, e.message]
        end
        w.write(answer.join("\t"))
        w.close
        exit!(0)
      end
      w.close
      [pid, r]
    end
    children.map do |pid, r|
      until (status = Process.wait2(pid, Process::WNOHANG)&.last)
        if Process.clock_gettime(Process::CLOCK_MONOTONIC) - started > HostileFiles::BOUND
          Process.kill(:KILL, pid)
          Process.wait(pid)
          raise "opener pid #{pid} hung (> #{HostileFiles::BOUND} s)"
        end
        sleep 0.01
      end
      answer = r.read.split("\t", 2)
      r.close
      [answer, status]
    end
  end

  # Makes, for every class, the hostile file +make+ builds at that class's name, opens each in a child and
  # expects +error+ (a class) with a message matching +message+, a normal exit, and the file unchanged.
  def expect_refused(error, message, **opts, &make)
    names = HostileFiles::CTORS.keys.to_h { |klass| [klass, "#{prefix}.#{klass}"] }
    names.each { |klass, name| make.call(klass, path(name)) }
    before = names.transform_values { |name| snapshot(path(name)) }
    results = open_in_children(names, **opts)
    failures = names.keys.zip(results).filter_map do |klass, ((err, msg), status)|
      why = []
      why << "died of signal #{status.termsig}" if status.signaled?
      why << "exit #{status.exitstatus}" if status.exited? && !status.success?
      cls = err.is_a?(String) && Object.const_defined?(err) ? Object.const_get(err) : nil
      why << "raised #{err.inspect}: #{msg.inspect}" unless cls && cls <= error && msg.match?(message)
      why << "file changed" unless snapshot(path(names[klass])) == before[klass]
      "#{klass}: #{why.join("; ")}" unless why.empty?
    end
    expect(failures).to be_empty, "#{failures.size} of #{names.size} classes:\n#{failures.join("\n")}"
  end

  def refused = /is not a process_shared object/

  it "refuses a file cut inside its header" do
    expect_refused(ProcessShared::IncompatibleError, refused) { |klass, p| File.binwrite(p, genuine(klass)[0, 32]) }
  end

  it "refuses a file whose header is intact but whose object is cut short (truncated), naming the sizes" do
    expect_refused(ProcessShared::IncompatibleError, /truncated: 100 bytes/) do |klass, p|
      File.binwrite(p, genuine(klass)[0, 100])
    end
  end

  it "refuses a zero-filled file of the wrong size (not an unfinished object of this class)" do
    expect_refused(ProcessShared::IncompatibleError, /unfinished.*100 bytes/) { |_, p| File.binwrite(p, "\0" * 100) }
  end

  it "refuses an object of another class, naming both" do
    others = HostileFiles::CTORS.keys.rotate
    expect_refused(ProcessShared::IncompatibleError, /is a ProcessShared::\w+, not a ProcessShared::\w+/) do |klass, p|
      File.binwrite(p, genuine(others[HostileFiles::CTORS.keys.index(klass)]))
    end
  end

  it "refuses garbage of the right size, and does not repair it in place" do
    rng = Random.new(10)
    expect_refused(ProcessShared::IncompatibleError, refused) do |klass, p|
      File.binwrite(p, rng.bytes(genuine(klass).bytesize))
    end
  end

  it "refuses a forged header of an unknown class" do
    expect_refused(ProcessShared::IncompatibleError, /unknown class 999/) do |klass, p|
      bytes = genuine(klass)
      bytes[8, 4] = [999].pack("L<")
      File.binwrite(p, bytes)
    end
  end

  it "does not follow a symlink, even to a genuine object of the class" do
    expect_refused(Errno::ELOOP, /opening named object "hostile/) do |klass, p|
      target = "#{path(prefix)}.target.#{klass}"
      File.binwrite(target, genuine(klass))
      File.symlink(target, p)
    end
    expect(Dir["#{path(prefix)}.target.*"].map { |t| File.lstat(t).file? }).to all(be(true))
  end

  it "does not follow a dangling symlink, nor create its target" do
    @tmp = Dir.mktmpdir("hostile")
    expect_refused(Errno::ELOOP, /opening named object "hostile/) { |klass, p| File.symlink("#{@tmp}/#{klass}", p) }
    expect(Dir.children(@tmp)).to be_empty
  end

  it "refuses a directory" do
    expect_refused(Errno::EISDIR, /opening named object "hostile/) { |_, p| Dir.mkdir(p) }
  end

  it "refuses a FIFO, promptly (no 2 s grace for a creator), and exist? does not hang on it" do
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    expect_refused(ProcessShared::IncompatibleError, /not a regular file \(a FIFO\)/) { |_, p| File.mkfifo(p) }
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0).to be < 2
    r, w = IO.pipe
    pid = fork do
      w.write(ProcessShared::Mutex.exist?("#{prefix}.Mutex").inspect)
      exit!(0)
    end
    w.close
    expect(r.wait_readable(HostileFiles::BOUND)).to be_truthy, "exist? hung on a FIFO"
    expect(r.read).to eq("true")
    Process.wait(pid)
  ensure
    r&.close
  end

  it "refuses a FIFO with create: :open_only too" do
    expect_refused(ProcessShared::IncompatibleError, /FIFO/, create: :open_only) { |_, p| File.mkfifo(p) }
  end

  it "leaves an empty file (a creator that died before sizing it) alone with create: :open_only" do
    expect_refused(Errno::ENOENT, /opening named object "hostile/, create: :open_only) { |_, p| File.binwrite(p, "") }
  end

  it "raises EACCES in another user's process opening a 0600 object it does not own" do
    skip "needs root and setpriv" unless Process.uid.zero? && system("command -v setpriv >/dev/null")
    names = HostileFiles::CTORS.keys.to_h { |klass| [klass, "#{prefix}.#{klass}"] }
    objs = names.map { |klass, name| HostileFiles::CTORS.fetch(klass).call(name: name, mode: 0o600) }
    before = names.transform_values { |name| snapshot(path(name)) }
    lib = File.expand_path("../lib", __dir__)
    code = <<~RUBY
      PS = ProcessShared
      args = { "Semaphore" => [1], "Queue" => [{ capacity: 256 }], "CountDownLatch" => [2], "Barrier" => [2],
               "AtomicInteger" => [0], "Counters" => [2], "SharedMemory" => [64], "SharedArray" => [:int, 16] }
      #{HostileFiles::CTORS.keys.inspect}.each do |k|
        a = args.fetch(k, [])
        kw = a.last.is_a?(Hash) ? a.pop : {}
        begin
          PS.const_get(k).new(*a, **kw, name: "#{prefix}." + k)
          puts k + " ok"
        rescue Exception => e
          puts k + " " + e.class.name + " " + e.message
        end
      end
    RUBY
    r, w = IO.pipe
    pid = Process.spawn("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        RbConfig.ruby, "-I", lib, "-rprocess_shared", "-e", code, out: w, chdir: "/")
    w.close
    expect(r.wait_readable(HostileFiles::BOUND * 3)).to be_truthy, "the nobody process hung"
    lines = r.read.lines(chomp: true)
    _, status = Process.wait2(pid)
    expect(status.signaled?).to be(false), status.inspect
    expect(status.success?).to be(true), status.inspect
    expect(lines.size).to eq(HostileFiles::CTORS.size)
    expect(lines).to all(match(/\A\w+ Errno::EACCES .*Permission denied/))
    expect(names.transform_values { |name| snapshot(path(name)) }).to eq(before)
    objs.each(&:close)
  ensure
    r&.close
  end

  it "takes over an empty file (a creator that died before sizing it), as documented, with :open_or_create" do
    expect(HostileFiles::NAMED_SOURCE).to include("taken over by the next +:open_or_create+ opener after 2 s")
    names = HostileFiles::CTORS.keys.to_h { |klass| [klass, "#{prefix}.#{klass}"] }
    names.each_value { |name| File.binwrite(path(name), "") }
    results = open_in_children(names)
    expect(results.map { |answer, status| [answer, status.success?] }).to all(eq([["ok"], true]))
  end
end
