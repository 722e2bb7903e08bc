# frozen_string_literal: true

require "fileutils"
require "json"
require "net/http"
require "open3"
require "rbconfig"
require "socket"
require "tmpdir"

# Issue 12, point 1: the example app (examples/rack_app) in real servers, Debian's `unicorn` and `puma`, on
# 127.0.0.1: a bounded load (threads x requests, each with a timeout), exact counts, the Semaphore's bound,
# SIGKILLs of the worker inside the critical section (the next holder repairs within 1 s), graceful restarts
# that keep the named objects, `process_shared list --json` while it runs, nothing left in /dev/shm after.
# Every server runs in a process group of its own, killed in after(:context) whatever happened.
module ServersSpec
  ROOT = File.expand_path("..", __dir__)
  APP = File.join(ROOT, "examples/rack_app")
  CLI = [RbConfig.ruby, "-I", File.join(ROOT, "lib"), File.join(ROOT, "exe/process_shared")].freeze
  NAMES = %w[counters lock state slots inside peak jobs].freeze
  CLASSES = {
    "counters" => "ProcessShared::Counters", "lock" => "ProcessShared::Mutex",
    "state" => "ProcessShared::SharedMemory", "slots" => "ProcessShared::Semaphore",
    "inside" => "ProcessShared::AtomicInteger", "peak" => "ProcessShared::AtomicInteger",
    "jobs" => "ProcessShared::Queue"
  }.freeze
  KILLS = 10
  RECOVERY_LIMIT_NS = 1_000_000_000
  WORKERS = 4

  module_function

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  def now_ns = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)

  # Why this suite cannot run here, or nil: the executable is missing, or runs another Ruby than this one
  # (bin/matrix runs the suite under other Rubies, whose extension Debian's unicorn cannot load).
  def skip_reason(exe)
    path = ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).map { |d| File.join(d, exe) }
              .find { |f| File.file?(f) && File.executable?(f) }
    return "#{exe} is not installed (bin/setup installs Debian's package)" unless path

    line = File.open(path, &:gets).to_s
    interpreter = line[/\A#!\s*(\S+)/, 1] or return "#{path} has no #! line"
    if File.basename(interpreter) == "env"
      name = line.split[1]
      interpreter = ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).map { |d| File.join(d, name) }
                       .find { |f| File.executable?(f) }.to_s
    end
    ours = File.realpath(RbConfig.ruby)
    theirs = File.exist?(interpreter) ? File.realpath(interpreter) : interpreter
    return "#{path} runs #{theirs}, not this Ruby (#{ours})" unless theirs == ours

    nil
  end

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  # A live process (a zombie is not: a re-exec'd master's parent may never reap it).
  def alive?(pid)
    state = File.read("/proc/#{pid}/stat")[/\) (\S)/, 1]
    !%w[Z X].include?(state)
  rescue Errno::ENOENT, Errno::ESRCH
    false
  end

  # Live children of pid (the server's workers), from /proc.
  def children_of(pid)
    Dir.glob("/proc/[0-9]*/stat").filter_map do |f|
      fields = File.read(f)[/\) (.*)/, 1].to_s.split
      Integer(File.basename(File.dirname(f))) if fields[1].to_i == pid && !%w[Z X].include?(fields[0])
    rescue Errno::ENOENT, Errno::ESRCH
      nil
    end
  end

  def wait_until(what, timeout:, interval: 0.02)
    deadline = now + timeout
    loop do
      value = yield
      return value if value
      raise "#{what}: not within #{timeout} s" if now > deadline

      sleep interval
    end
  end

  # One server of the example app, in a process group of its own.
  class Server
    attr_reader :kind, :port, :prefix, :pid, :pgid, :log

    def initialize(kind, prefix:, dir:, env: {})
      @kind = kind
      @prefix = prefix
      @dir = dir
      @extra_env = env
      @log = File.join(dir, "#{kind}.log")
      @pidfile = File.join(dir, "#{kind}.pid")
    end

    def start(timeout: 90)
      @port = ServersSpec.free_port
      env = { "PORT" => @port.to_s, "PS_EXAMPLE_PREFIX" => @prefix, "PS_EXAMPLE_PIDFILE" => @pidfile,
              "PS_EXAMPLE_WORKERS" => WORKERS.to_s }.merge(@extra_env)
      cmd = @kind == :unicorn ? %w[unicorn -c unicorn.rb config.ru] : %w[puma -C puma.rb config.ru]
      @pid = @pgid = Process.spawn(env, *cmd, chdir: APP, pgroup: true, in: File::NULL, %i[out err] => [@log, "a"])
      wait_workers(timeout: timeout)
      self
    end

    # The master has its workers, each of them serving (a /ping answered by each pid).
    def wait_workers(timeout: 90, besides: [])
      ServersSpec.wait_until("#{@kind}: #{WORKERS} workers up\n#{log_tail}", timeout: timeout, interval: 0.1) do
        raise "#{@kind} master #{@pid} exited\n#{log_tail}" unless ServersSpec.alive?(@pid)

        workers = ServersSpec.children_of(@pid) - besides
        workers.size == WORKERS
      end
      ServersSpec.wait_until("#{@kind}: serving\n#{log_tail}", timeout: timeout, interval: 0.1) do
        get("/ping", timeout: 5)[0] == 200
      rescue SystemCallError, IOError, Net::ReadTimeout, Net::OpenTimeout
        false
      end
    end

    def puma? = @kind == :puma

    def workers = ServersSpec.children_of(@pid)

    # One request on a connection of its own. Never retried: Net::HTTP re-sends an idempotent request once
    # when the connection breaks, which would run /hold again on another worker and could count twice.
    def request(method, path, timeout: 10)
      http = Net::HTTP.new("127.0.0.1", @port)
      http.open_timeout = 5
      http.read_timeout = timeout
      http.write_timeout = 5
      http.max_retries = 0
      http.start do
        res = http.send_request(method, path)
        [res.code.to_i, res.body]
      end
    end

    def get(path, timeout: 10) = request("GET", path, timeout: timeout)

    def stats
      code, body = get("/stats")
      raise "/stats answered #{code}: #{body}" unless code == 200

      JSON.parse(body)
    end

    def pidfile_pid(suffix = "")
      Integer(File.read(@pidfile + suffix).strip)
    rescue Errno::ENOENT, ArgumentError
      nil
    end

    # A master re-exec'd by USR2 becomes the server (its process group stays ours).
    def adopt(pid)
      @pid = pid
    end

    # Graceful stop (QUIT, Puma: TERM); true if the master ended within timeout.
    def stop(timeout: 30)
      return true unless @pid && ServersSpec.alive?(@pid)

      Process.kill(puma? ? :TERM : :QUIT, @pid)
      deadline = ServersSpec.now + timeout
      until ServersSpec.now > deadline
        reap
        return true unless ServersSpec.alive?(@pid)

        sleep 0.05
      end
      false
    end

    # Whatever is left of the process group: SIGKILL, reaped.
    def kill_all
      return unless @pgid

      begin
        Process.kill(:KILL, -@pgid)
      rescue Errno::ESRCH
        nil
      end
      ServersSpec.wait_until("#{@kind}: its process group gone", timeout: 10) do
        reap
        Dir.glob("/proc/[0-9]*/stat").none? do |f|
          fields = File.read(f)[/\) (.*)/, 1].to_s.split
          fields[2].to_i == @pgid && !%w[Z X].include?(fields[0])
        rescue Errno::ENOENT, Errno::ESRCH
          false
        end
      end
    end

    def reap
      Process.waitpid(@pgid, Process::WNOHANG)
    rescue Errno::ECHILD
      nil
    end

    def log_tail = File.exist?(@log) ? File.readlines(@log).last(15).join : "(no log)"
  end

  # `threads` threads, each making `per_thread` requests in turn (each bounded by its read timeout), the
  # whole bounded too: answers the failures (exceptions or non-200 answers) and the requests that hung.
  def load(server, paths, threads:, per_thread:, timeout: 120)
    failures = Thread::Queue.new
    workers = Array.new(threads) do |t|
      Thread.new do
        per_thread.times do |i|
          method, path = paths[(t + i) % paths.size]
          code, body = server.request(method, path, timeout: 20)
          failures << "#{method} #{path}: #{code} #{body}" unless code == 200
        rescue StandardError => e
          failures << "#{method} #{path}: #{e.class}: #{e.message}"
        end
      end
    end
    deadline = now + timeout
    hung = workers.count { |w| !w.join([deadline - now, 0].max) }
    workers.each(&:kill)
    [Array.new(failures.size) { failures.pop }, hung]
  end

  def cli_json(*args)
    out, err, status = Open3.capture3(*CLI, *args, "--json")
    raise "process_shared #{args.join(" ")}: exit #{status.exitstatus}: #{err}" unless status.success?

    JSON.parse(out)
  end
end

RSpec.shared_examples "the example app in a server" do |kind|
  before(:context) do
    reason = ServersSpec.skip_reason(kind.to_s)
    skip(reason) if reason
    @dir = Dir.mktmpdir("servers-spec")
    @prefix = "servers-spec-#{kind}-#{Process.pid}-#{rand(1 << 30)}"
    @server = ServersSpec::Server.new(kind, prefix: @prefix, dir: @dir)
    @server.start
    @lock = ProcessShared::Mutex.new(name: "#{@prefix}.lock", create: :open_only)
  end

  after(:context) do
    @lock&.close
    @server&.kill_all
    if @prefix # nothing of ours stays, even after a failure
      Dir.glob("/dev/shm/process_shared.#{@prefix}.*").each { |f| File.unlink(f) }
    end
    FileUtils.rm_rf(@dir) if @dir
  end

  let(:server) { @server }

  def names = ServersSpec::NAMES.map { |n| "#{@prefix}.#{n}" }

  def listed_names
    ServersSpec.cli_json("list").fetch("objects").map { |o| o["name"] }.select { |n| n.start_with?("#{@prefix}.") }
  end

  it "counts every request exactly, under a bounded load with no request hanging", timeout: 180 do
    before = server.stats
    failures, hung = ServersSpec.load(server, [%w[GET /count]], threads: 8, per_thread: 50)
    expect([failures.first(5), hung]).to eq([[], 0])
    after = server.stats
    expect(after["total"] - before["total"]).to eq(400) # the Mutex-protected read-modify-write lost nothing
    expect(after["counters"]["requests"] - before["counters"]["requests"]).to eq(400) # Counters
  end

  it "never lets more than 2 requests hold the Semaphore(2), and reaches 2", timeout: 180 do
    failures, hung = ServersSpec.load(server, [%w[GET /scarce]], threads: 8, per_thread: 25)
    expect([failures.first(5), hung]).to eq([[], 0])
    stats = server.stats
    expect(stats["peak"]).to eq(2)
    expect([stats["inside"], stats["slots"]]).to eq([0, 2])
  end

  it "feeds every job of the Queue to a worker", timeout: 180 do
    before = server.stats["counters"]["jobs_done"]
    failures, hung = ServersSpec.load(server, [%w[POST /enqueue]], threads: 4, per_thread: 25)
    expect([failures.first(5), hung]).to eq([[], 0])
    ServersSpec.wait_until("100 jobs done", timeout: 30) { server.stats["counters"]["jobs_done"] - before >= 100 }
    stats = server.stats
    expect([stats["counters"]["jobs_done"] - before, stats["queued"]]).to eq([100, 0])
  end

  it "shows its named objects, and the lock's owner, in `process_shared list --json`", timeout: 60 do
    holder = Thread.new { server.get("/hold?s=3", timeout: 20) }
    owner = ServersSpec.wait_until("a worker holds the lock", timeout: 10) { @lock.owner_pid }
    objects = ServersSpec.cli_json("list").fetch("objects").select { |o| o["name"].start_with?("#{@prefix}.") }
    expect(objects.map { |o| o["name"] }.sort).to eq(names.sort)
    objects.each do |o|
      expect([o["name"], o["class"], o["error"]])
        .to eq([o["name"], ServersSpec::CLASSES.fetch(o["name"].delete_prefix("#{@prefix}.")), nil])
    end
    lock = objects.find { |o| o["name"] == "#{@prefix}.lock" }
    expect(lock["owner"]).to eq({ "pid" => owner, "alive" => true })
    expect(lock["state"]["locked"]).to be(true)
    expect(server.workers).to include(owner)
    expect(holder.join(20)&.value).to eq([200, "held"])
  end

  it "recovers from #{ServersSpec::KILLS} SIGKILLs of the worker holding the lock, each within 1 s",
     timeout: 400 do
    recoveries = []
    ServersSpec::KILLS.times do |round|
      before = server.stats
      holder = Thread.new do
        server.get("/hold?s=20", timeout: 30)
      rescue StandardError => e
        e
      end
      owner = ServersSpec.wait_until("round #{round}: a worker holds the lock", timeout: 10) { @lock.owner_pid }
      expect(server.workers).to include(owner)
      # A request waits on the lock before the kill (Puma may give it to a thread of the doomed worker).
      waiter = Thread.new do
        server.get("/count", timeout: 20)
      rescue StandardError => e
        e
      end
      ServersSpec.wait_until("round #{round}: a request waits on the lock", timeout: 10) do
        ProcessShared.inspect_named("#{@prefix}.lock").dig("state", "has_waiters")
      end
      killed_at = ServersSpec.now_ns
      Process.kill(:KILL, owner)
      answer = waiter.join(20)&.value
      unless answer.is_a?(Array) && answer[0] == 200 # the waiter died with the worker: the next request repairs
        ServersSpec.wait_until("round #{round}: a /count answered", timeout: 20, interval: 0) do
          res = server.get("/count", timeout: 10)
          res if res[0] == 200
        rescue StandardError
          nil
        end
      end
      ended = holder.join(10)&.value # the holder's request ended with its worker, unanswered
      expect(ended).to be_a(StandardError)
      stats = server.stats
      expect(stats["counters"]["repairs"] - before["counters"]["repairs"]).to eq(1)
      expect([stats["dead_pid"], stats["dirty"]]).to eq([owner, 0])
      recovery = stats["repaired_at_ns"] - killed_at
      expect(recovery).to be_between(0, ServersSpec::RECOVERY_LIMIT_NS)
      recoveries << recovery
      # The master replaces the worker before the next round (never fewer than 4 to kill from).
      server.wait_workers(timeout: 60, besides: [owner])
    end
    ms = recoveries.map { |ns| (ns / 1e6).round(1) }
    puts "  #{kind}: #{ServersSpec::KILLS} kills in the critical section, recovered after #{ms.join(", ")} ms"
  end
end

RSpec.describe "the example app under Unicorn (preload_app, 4 workers)", :servers, order: :defined do
  include_examples "the example app in a server", :unicorn

  def restart_keeps_values(server)
    before = server.stats
    yield
    failures, hung = ServersSpec.load(server, [%w[GET /count]], threads: 4, per_thread: 10)
    expect([failures.first(5), hung]).to eq([[], 0])
    after = server.stats
    expect(after["total"]).to eq(before["total"] + 40) # the named objects' values survived the restart
    expect(after["counters"]["requests"]).to eq(before["counters"]["requests"] + 40)
    expect(after["peak"]).to eq(before["peak"])
  end

  it "keeps the named objects across HUP (reload: every worker replaced)", timeout: 180 do
    restart_keeps_values(server) do
      old = server.workers
      Process.kill(:HUP, server.pid)
      ServersSpec.wait_until("HUP: every worker replaced", timeout: 90, interval: 0.1) do
        now = server.workers
        now.size == ServersSpec::WORKERS && (now & old).empty?
      end
      server.wait_workers
    end
  end

  it "keeps the named objects across USR2 + QUIT (a new master re-executed, the old one stopped)",
     timeout: 180 do
    restart_keeps_values(server) do
      old_master = server.pid
      Process.kill(:USR2, old_master)
      new_master = ServersSpec.wait_until("USR2: a new master", timeout: 90, interval: 0.1) do
        pid = server.pidfile_pid
        pid if pid && pid != old_master && ServersSpec.children_of(pid).size == ServersSpec::WORKERS
      end
      Process.kill(:QUIT, old_master)
      ServersSpec.wait_until("QUIT: the old master gone", timeout: 60, interval: 0.05) do
        server.reap
        !ServersSpec.alive?(old_master)
      end
      server.adopt(new_master)
      server.wait_workers
      expect(server.stats["ppid"]).to eq(new_master)
    end
  end

  it "stops, and leaves nothing in /dev/shm once `process_shared unlink` removed the names", timeout: 120 do
    expect(server.stop).to be(true)
    mine = listed_names
    expect(mine.sort).to eq(names.sort) # named objects outlive the server until unlinked
    result = ServersSpec.cli_json("unlink", *mine)
    expect([result["unlinked"].sort, result["errors"]]).to eq([names.sort, []])
    expect(Dir.glob("/dev/shm/process_shared.#{@prefix}.*")).to eq([])
  end
end

RSpec.describe "the example app under Puma (cluster, 4 workers x 4 threads)", :servers, order: :defined do
  include_examples "the example app in a server", :puma

  it "keeps the named objects across a phased restart (SIGUSR1: worker by worker)", timeout: 240 do
    before = server.stats
    old = server.workers
    Process.kill(:USR1, server.pid)
    ServersSpec.wait_until("phased restart: every worker replaced", timeout: 180, interval: 0.1) do
      now = server.workers
      now.size == ServersSpec::WORKERS && (now & old).empty?
    end
    server.wait_workers
    failures, hung = ServersSpec.load(server, [%w[GET /count]], threads: 4, per_thread: 10)
    expect([failures.first(5), hung]).to eq([[], 0])
    after = server.stats
    expect(after["total"]).to eq(before["total"] + 40)
    expect(after["counters"]["requests"]).to eq(before["counters"]["requests"] + 40)
  end

  it "stops, and leaves nothing in /dev/shm once `process_shared unlink` removed the names", timeout: 120 do
    expect(server.stop).to be(true)
    mine = listed_names
    expect(mine.sort).to eq(names.sort)
    result = ServersSpec.cli_json("unlink", *mine)
    expect([result["unlinked"].sort, result["errors"]]).to eq([names.sort, []])
    expect(Dir.glob("/dev/shm/process_shared.#{@prefix}.*")).to eq([])
  end
end
