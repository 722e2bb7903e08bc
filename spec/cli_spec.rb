# frozen_string_literal: true

require "json"
require "open3"
require "rbconfig"
require "socket"

# Issue 12, points 2 and 6: the `process_shared` command (exe/process_shared), run as a user runs it, on named
# objects this spec makes in the real /dev/shm (each under a name of its own, so other specs' objects running
# meanwhile do not matter), and the data behind it as a Ruby API and Prometheus text.
module CliSpec
  ROOT = File.expand_path("..", __dir__)
  COMMAND = [RbConfig.ruby, "-I", File.join(ROOT, "lib"), File.join(ROOT, "exe/process_shared")].freeze
end

RSpec.describe "the process_shared command" do
  def run_cli(*args)
    out, err, status = Open3.capture3(*CliSpec::COMMAND, *args)
    [out, err, status.exitstatus]
  end

  def mine(objects)
    objects.select { |o| o["name"].start_with?("#{tag}.") }
  end

  def json(*args)
    out, err, code = run_cli(*args, "--json")
    expect([err, code]).to eq(["", 0])
    JSON.parse(out)
  end

  def listed(name)
    json("list").fetch("objects").find { |o| o["name"] == name }
  end

  let(:tag) { "cli-#{Process.pid}-#{rand(1 << 30)}" }
  let(:made) { [] }

  def named(suffix)
    "#{tag}.#{suffix}".tap { |n| made << n }
  end

  after do
    made.each { |n| ProcessShared::SharedMemory.unlink(n) if ProcessShared::SharedMemory.exist?(n) }
  end

  it "lists every class's named objects with the documented schema (list --json)" do
    objects = {
      "ProcessShared::Mutex" => ProcessShared::Mutex.new(name: named("mutex")),
      "ProcessShared::Monitor" => ProcessShared::Monitor.new(name: named("monitor")),
      "ProcessShared::Semaphore" => ProcessShared::Semaphore.new(3, name: named("semaphore")),
      "ProcessShared::BinarySemaphore" => ProcessShared::BinarySemaphore.new(1, name: named("binary")),
      "ProcessShared::ConditionVariable" => ProcessShared::ConditionVariable.new(name: named("condvar")),
      "ProcessShared::AtomicInteger" => ProcessShared::AtomicInteger.new(-7, name: named("atomic")),
      "ProcessShared::Event" => ProcessShared::Event.new(name: named("event")),
      "ProcessShared::CountDownLatch" => ProcessShared::CountDownLatch.new(2, name: named("latch")),
      "ProcessShared::Barrier" => ProcessShared::Barrier.new(3, name: named("barrier")),
      "ProcessShared::SharedMemory" => ProcessShared::SharedMemory.new(100, name: named("memory")),
      "ProcessShared::SharedArray" => ProcessShared::SharedArray.new(:int, 4, name: named("array")),
      "ProcessShared::Counters" => ProcessShared::Counters.new(3, name: named("counters")),
      "ProcessShared::ReadWriteLock" => ProcessShared::ReadWriteLock.new(name: named("rwlock")),
      "ProcessShared::Queue" => ProcessShared::Queue.new(capacity: 512, max: 9, name: named("queue"))
    }
    objects["ProcessShared::Counters"].incr(2, 40)
    objects["ProcessShared::Event"].set
    objects["ProcessShared::Queue"].push([1, 2])
    doc = json("list")
    expect(doc["version"]).to eq(1)
    mine = mine(doc["objects"])
    expect(mine.map { |o| o["class"] }).to match_array(objects.keys)
    keys = %w[name class size file_size mode uid owner waiters state error]
    mine.each do |o|
      expect(o.keys).to eq(keys)
      expect(o).to include("mode" => "0600", "error" => nil, "owner" => nil, "uid" => Process.uid)
      expect(o["size"]).to be_a(Integer).and(be <= o["file_size"])
    end
    by_class = mine.to_h { |o| [o["class"], o] }
    expect(by_class["ProcessShared::Mutex"]["state"]).to eq("locked" => false, "owner_died" => false,
                                                            "has_waiters" => false)
    expect(by_class["ProcessShared::Semaphore"]).to include("waiters" => 0,
                                                            "state" => include(
                                                              "value" => 3, "held" => 0
                                                            ))
    expect(by_class["ProcessShared::BinarySemaphore"]["state"]).to include("value" => 1, "max" => 1)
    expect(by_class["ProcessShared::ConditionVariable"]).to include("waiters" => 0, "state" => {})
    expect(by_class["ProcessShared::AtomicInteger"]["state"]).to eq("value" => -7)
    expect(by_class["ProcessShared::Counters"]["state"]).to eq("values" => [0, 0, 40], "count" => 3)
    expect(by_class["ProcessShared::Event"]["state"]).to include("set" => true)
    expect(by_class["ProcessShared::CountDownLatch"]["state"]).to include("count" => 2)
    expect(by_class["ProcessShared::Barrier"]).to include("waiters" => 0,
                                                          "state" => {
                                                            "parties" => 3, "broken" => false
                                                          })
    expect(by_class["ProcessShared::SharedMemory"]).to include("size" => 100, "state" => {})
    expect(by_class["ProcessShared::Queue"]["state"]).to eq("length" => 1, "capacity" => 512, "max" => 9,
                                                            "closed" => false, "locked" => false)
    expect(mine(ProcessShared.named_objects)).to eq(mine) # the same data
    out, err, code = run_cli("list")
    expect([err, code]).to eq(["", 0])
    expect(out.lines.first.split).to eq(%w[NAME CLASS SIZE MODE OWNER WAITERS STATE])
    expect(out).to match(/^#{Regexp.escape(tag)}\.counters +Counters +192 +0600 +- +0 +values=\[0,0,40\] count=3$/)
    objects.each_value(&:close)
  end

  it "shows a lock's owner alive while it holds it, and dead once SIGKILLed (owner alive true/false)" do
    mutex = ProcessShared::Mutex.new(name: named("held"))
    rwlock = ProcessShared::ReadWriteLock.new(name: named("written"))
    h = handshake
    pid = fork_child do
      mutex.lock
      rwlock.acquire_write_lock
      h.signal
      sleep
    end
    h.wait
    held = listed("#{tag}.held")
    expect(held["owner"]).to eq("pid" => pid, "alive" => true)
    expect(held["state"]).to include("locked" => true)
    expect(listed("#{tag}.written")).to include("owner" => { "pid" => pid, "alive" => true },
                                                "state" => include("write_locked" => true))
    out, = run_cli("inspect", "#{tag}.held")
    expect(out).to include("owner:       #{pid} (alive)", "locked:      true")

    Process.kill(:KILL, pid)
    Process.wait(pid)
    expect(json("inspect", "#{tag}.held")["objects"].first["owner"]).to eq("pid" => pid, "alive" => false)
    expect(listed("#{tag}.written")["owner"]).to eq("pid" => pid, "alive" => false)
    out, = run_cli("list")
    expect(out).to match(/^#{Regexp.escape(tag)}\.held +Mutex +24 +0600 +#{pid} \(dead\)/)
    # Reading took no lock: the dead holder's lock is still there to be taken over, as always.
    expect { mutex.lock }.to raise_error(ProcessShared::OwnerDeadError)
    mutex.unlock
  end

  it "counts a semaphore's waiters while a child waits" do
    sem = ProcessShared::Semaphore.new(0, name: named("gate"))
    h = handshake
    pid = fork_child do
      h.signal
      sem.wait
    end
    h.wait
    # The child counts itself as a waiter just after its signal, before it sleeps: wait for that (bounded).
    Timeout.timeout(10) { sleep 0.01 until ProcessShared.inspect_named("#{tag}.gate")["waiters"] == 1 }
    expect(json("inspect", "#{tag}.gate")["objects"].first).to include("waiters" => 1, "state" => include("value" => 0))
    sem.post
    wait_child(pid)
  end

  it "unlinks names (unlink), and says which it could not, with a non-zero exit" do
    ProcessShared::Counters.new(1, name: named("a")).close
    ProcessShared::Event.new(name: named("b")).close
    out, err, code = run_cli("unlink", "#{tag}.a", "#{tag}.b")
    expect([out, err, code]).to eq(["unlinked #{tag}.a\nunlinked #{tag}.b\n", "", 0])
    expect(ProcessShared::Counters.exist?("#{tag}.a") || ProcessShared::Event.exist?("#{tag}.b")).to be(false)
    out, err, code = run_cli("unlink", "#{tag}.a", "--json")
    expect(code).to eq(1)
    expect(err).to include(%(no named object "#{tag}.a"))
    expect(JSON.parse(out)).to eq("version" => 1, "unlinked" => [],
                                  "errors" => [{ "name" => "#{tag}.a", "error" => %(no named object "#{tag}.a") }])
  end

  it "fails clearly for unknown and invalid names and for usage errors" do
    out, err, code = run_cli("inspect", "#{tag}.missing")
    expect([out, code]).to eq(["", 1])
    expect(err).to eq(%(process_shared: no named object "#{tag}.missing"\n))
    out, err, code = run_cli("inspect", "bad/name", "--json")
    expect(code).to eq(1)
    expect(JSON.parse(out)["objects"]).to eq([])
    expect(err).to include("name must be 1..200 characters")
    expect { ProcessShared.inspect_named("#{tag}.missing") }.to raise_error(Errno::ENOENT)
    expect { ProcessShared.inspect_named("") }.to raise_error(ArgumentError)
    [[], ["frob"], %w[list x], ["inspect"], ["unlink"], ["list", "--bogus"]].each do |args|
      _, err, code = run_cli(*args)
      expect(code).to eq(2), "#{args}: #{err}"
      expect(err).to include("Usage: process_shared list")
    end
    out, _, code = run_cli("--help")
    expect([out, code]).to match([include("process_shared inspect NAME"), 0])
    expect(run_cli("--version")).to eq(["#{ProcessShared::VERSION}\n", "", 0])
  end

  it "reports files under the prefix that are not objects of the gem as unreadable, never crashing on them" do
    dir = "/dev/shm/process_shared."
    File.write("#{dir}#{named("garbage")}", "\xA5".b * 8192)
    File.write("#{dir}#{named("empty")}", "")
    File.write("#{dir}#{named("short")}", "abc")
    File.write("#{dir}#{named("zeroed")}", "\0" * 4096)
    File.symlink("#{dir}#{tag}.garbage", "#{dir}#{named("link")}")
    File.mkfifo("#{dir}#{named("fifo")}")
    cut = ProcessShared::Counters.new(1024, name: named("cut"))
    cut.close
    File.truncate("#{dir}#{tag}.cut", 4096)
    foreign = "/dev/shm/not-process-shared-#{tag}"
    File.write(foreign, "x")

    doc = json("list") # exit 0: the listing itself worked
    mine = mine(doc["objects"]).to_h { |o| [o["name"].delete_prefix("#{tag}."), o] }
    expect(mine.keys).to match_array(%w[garbage empty short zeroed link fifo cut])
    expected = { "garbage" => "no valid header", "empty" => "empty", "short" => "too short", "zeroed" => "unfinished",
                 "link" => "symlink", "fifo" => "FIFO", "cut" => "truncated" }
    expected.each do |name, reason|
      expect(mine[name]).to include("class" => nil, "state" => nil, "owner" => nil, "error" => include(reason))
    end
    expect(doc["objects"].map { |o| o["name"] }).not_to include(a_string_including("not-process-shared"))
    out, err, code = run_cli("inspect", "#{tag}.garbage")
    expect([err, code]).to eq(["", 1])
    expect(out).to include("error:       no valid header")
    out, = run_cli("list")
    expect(out).to match(/^#{Regexp.escape(tag)}\.fifo +\? .*unreadable: not a regular file \(a FIFO\)/)
    expect(File.binread("#{dir}#{tag}.garbage")).to eq("\xA5".b * 8192) # left as it was
    File.unlink(foreign)
  end

  describe "metrics" do
    it "Counters#to_h reads the counters by index or by label" do
      stats = ProcessShared::Counters.new(3)
      stats.incr(0, 5)
      stats.decr(2)
      expect(stats.to_h).to eq(0 => 5, 1 => 0, 2 => -1)
      expect(stats.to_h(%w[requests errors retries])).to eq("requests" => 5, "errors" => 0, "retries" => -1)
      expect(stats.to_h { |v| [v, true] }).to eq(5 => true, 0 => true, -1 => true)
      expect { stats.to_h(%w[one]) }.to raise_error(ArgumentError, "1 labels for 3 counters")
    end

    it "prometheus_text gives a gauge per number of the listing" do
      ProcessShared::Counters.new(2, name: named("hits")).incr(1, 3)
      ProcessShared::Semaphore.new(2, name: named("slots"))
      File.write("/dev/shm/process_shared.#{named("junk")}", "junk")
      text = ProcessShared.prometheus_text(mine(ProcessShared.named_objects))
      hits = %(name="#{tag}.hits",class="Counters")
      slots = %(name="#{tag}.slots",class="Semaphore")
      expect(text.lines.map(&:chomp)).to include(
        "process_shared_object{#{hits}} 1", %(process_shared_values{#{hits},index="1"} 3),
        "process_shared_count{#{hits}} 2",
        "process_shared_waiters{#{slots}} 0", "process_shared_value{#{slots}} 2",
        %(process_shared_unreadable{name="#{tag}.junk"} 1)
      )
      expect(text.lines).to all(match(/\Aprocess_shared_[a-z_]+\{[^}]*\} -?\d+\n\z/))
    end

    it "serves them over HTTP as the README's exporter does" do
      ProcessShared::AtomicInteger.new(12, name: named("served"))
      readme = File.read(File.join(CliSpec::ROOT, "README.md"))
      code = readme.scan(/^```ruby\n(.*?)^```/m).flatten.find { |c| c.include?("TCPServer") }
      port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
      server = IO.popen([RbConfig.ruby, "-I", File.join(CliSpec::ROOT, "lib"), "-e", code.sub("9394", port.to_s)])
      body = Timeout.timeout(20) do
        TCPSocket.open("127.0.0.1", port) { |c| c.write("GET /metrics HTTP/1.0\r\n\r\n") && c.read }
      rescue Errno::ECONNREFUSED
        sleep 0.05 # until the exporter listens
        retry
      end
      expect(body).to start_with("HTTP/1.0 200 OK\r\n")
      expect(body).to include(%(process_shared_value{name="#{tag}.served",class="AtomicInteger"} 12\n))
    ensure
      Process.kill(:KILL, server.pid) if server
      server&.close
    end
  end
end
