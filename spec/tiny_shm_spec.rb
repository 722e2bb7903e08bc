# frozen_string_literal: true

require "rbconfig"

# Issue 10, point 1: a full /dev/shm refuses space (Errno::ENOSPC / ENOMEM) instead of killing the process
# with SIGBUS. A child in a private mount namespace (`unshare -m`) gets a 1 MiB tmpfs on /dev/shm and runs
# every class's constructor and typical use, anonymous and named, until space runs out.
module TinyShmSpec
  WORKER = <<~'RUBY'
    PS = ProcessShared
    uses = {
      PS::SharedMemory => [->(n) { PS::SharedMemory.new(8192, **n) }, ->(o) { o.put_bytes(8191, "x"); o.write_object([1]); o.read_object }],
      PS::SharedArray => [->(n) { PS::SharedArray.new(:int, 2048, **n) }, ->(o) { o[-1] = 5; o.to_a }],
      PS::Mutex => [->(n) { PS::Mutex.new(**n) }, ->(o) { o.synchronize { o.owned? } }],
      PS::Monitor => [->(n) { PS::Monitor.new(**n) }, ->(o) { o.synchronize { o.synchronize { 1 } } }],
      PS::ConditionVariable => [->(n) { PS::ConditionVariable.new(**n) }, ->(o) { m = PS::Mutex.new; m.synchronize { o.wait(m, 0) }; o.broadcast }],
      PS::ReadWriteLock => [->(n) { PS::ReadWriteLock.new(**n) }, ->(o) { o.with_read_lock { 1 }; o.with_write_lock { 1 } }],
      PS::Semaphore => [->(n) { PS::Semaphore.new(2, **n) }, ->(o) { o.synchronize { o.value } }],
      PS::BinarySemaphore => [->(n) { PS::BinarySemaphore.new(1, **n) }, ->(o) { o.wait; o.post }],
      PS::Queue => [->(n) { PS::Queue.new(capacity: 4096, **n) }, ->(o) { o.push([1, 2]); o.pop }],
      PS::Event => [->(n) { PS::Event.new(**n) }, ->(o) { o.set; o.wait(0) }],
      PS::CountDownLatch => [->(n) { PS::CountDownLatch.new(1, **n) }, ->(o) { o.count_down; o.wait(0) }],
      PS::Barrier => [->(n) { PS::Barrier.new(1, **n) }, ->(o) { o.wait(1) }],
      PS::AtomicInteger => [->(n) { PS::AtomicInteger.new(0, **n) }, ->(o) { o.increment }],
      PS::Counters => [->(n) { PS::Counters.new(64, **n) }, ->(o) { o.incr(63) }],
    }
    bad = []
    report = {}
    uses.each do |klass, (make, use)|
      kept = []
      ok = full = 0
      [[{}, 20], [:named, 2000]].each do |kind, limit|
        limit.times do |i|
          opts = kind == :named ? { name: "tiny.#{klass.name.split("::").last}.#{i}" } : {}
          begin
            o = make.call(opts)
            kept << [o, opts[:name]]
            use.call(o)
            ok += 1
          rescue Errno::ENOSPC, Errno::ENOMEM
            full += 1
            break
          rescue Exception => e
            bad << "#{klass} #{opts}: #{e.class}: #{e.message}"
            break
          end
        end
      end
      kept.each { |o, name| o.close; klass.unlink(name) if name }
      report[klass.name] = [ok, full]
    end
    # More than the whole tmpfs, and a default-capacity (1 MiB) queue.
    [-> { PS::SharedMemory.new(8 << 20, name: "tiny.big").put_bytes((8 << 20) - 1, "x") },
     -> { PS::Queue.new(name: "tiny.queue").push(1) }].each_with_index do |f, i|
      f.call
      bad << "big #{i} did not run out of space"
    rescue Errno::ENOSPC, Errno::ENOMEM
      report["big#{i}"] = [0, 1]
    end
    print Marshal.dump([report, bad])
  RUBY

  DRIVER = <<~'RUBY'
    ruby, lib, worker = ARGV
    abort "mount" unless system("mount --make-rprivate / && mount -t tmpfs -o size=1m tmpfs /dev/shm")
    out = IO.popen([ruby, "-I", lib, "-rprocess_shared", "-e", worker], &:read)
    status = $?
    print Marshal.dump([status.exitstatus, status.termsig, out, Dir.children("/dev/shm").sort])
  RUBY
end

RSpec.describe "a 1 MiB /dev/shm (issue 10, point 1)" do
  def unshare_works?
    Process.uid.zero? && system("unshare", "-m", "true", out: File::NULL, err: File::NULL)
  end

  it "refuses space with ENOSPC/ENOMEM, never dies of a signal, and leaves nothing behind" do
    skip "needs root and unshare -m (a private mount namespace for a tiny tmpfs)" unless unshare_works?

    lib = File.expand_path("../lib", __dir__)
    out = IO.popen(
      ["unshare", "-m", RbConfig.ruby, "-e", TinyShmSpec::DRIVER, RbConfig.ruby, lib, TinyShmSpec::WORKER], &:read
    )
    code, sig, worker_out, left = Marshal.load(out) # rubocop:disable Security/MarshalLoad
    expect(sig).to be_nil, "the worker died of signal #{sig} (#{Signal.signame(sig.to_i)})"
    expect(code).to eq(0)
    report, bad = Marshal.load(worker_out) # rubocop:disable Security/MarshalLoad
    expect(bad).to eq([])
    report.each do |klass, (ok, full)|
      next if klass.start_with?("big")

      expect(ok).to be >= 20, "#{klass}: only #{ok} objects worked"
      expect(full).to eq(1), "#{klass}: named objects never ran out of a 1 MiB /dev/shm" # space really ran out
    end
    expect(left - ["process_shared-owners"]).to eq([])
  end
end
