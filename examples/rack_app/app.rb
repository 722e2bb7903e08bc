# frozen_string_literal: true

# The example Rack app of the README's "Servers (Unicorn, Puma)" recipe, booted by spec/servers_spec.rb under
# Unicorn (examples/rack_app/unicorn.rb) and Puma (examples/rack_app/puma.rb), and by `rake bench`.
#
# Every object is named, so it survives Unicorn's HUP and USR2 and Puma's phased restart; each worker opens
# the names in its after-fork hook (ExampleApp.after_fork). Names start with ENV["PS_EXAMPLE_PREFIX"]
# (default "example"): `process_shared list` shows them, `process_shared unlink` removes them.
# PS_EXAMPLE_NOOP=1 replaces every call of the gem with a no-op (the benchmark's baseline).
#
#   GET  /count        counts the request (Counters) and adds 1 to a total under the cross-worker Mutex
#   GET  /scarce       takes one of the Semaphore's 2 permits for 10 ms (the peak of holders is recorded)
#   POST /enqueue      pushes a job on the Queue; a thread of each worker pops and counts it
#   GET  /hold?s=N     holds the Mutex for N seconds with the state half-updated (a worker killed meanwhile
#                      leaves it so: the next holder gets OwnerDeadError and repairs it)
#   GET  /stats        everything, as JSON
#   GET  /ping         the worker's pid (no gem call)

require "json"
$LOAD_PATH.unshift File.expand_path("../../lib", __dir__) # this checkout's gem (drop in an app of your own)
require "process_shared" unless ENV["PS_EXAMPLE_NOOP"] == "1"

module ExampleApp
  PREFIX = ENV.fetch("PS_EXAMPLE_PREFIX", "example")
  NOOP = ENV["PS_EXAMPLE_NOOP"] == "1"
  SLOTS = 2 # the Semaphore's permits: at most 2 requests use the scarce resource at once
  HOLD_MAX = 30 # seconds /hold may hold the lock

  # Counters' indexes
  REQUESTS = 0 # every request but /ping and /stats
  REPAIRS = 1 # OwnerDeadError handled
  JOBS_DONE = 2 # jobs popped by the workers' consumer threads
  COUNTER_NAMES = %w[requests repairs jobs_done].freeze

  # SharedMemory "state" (int64 at each offset), protected by the Mutex
  TOTAL = 0 # /count adds 1 under the lock (a read-modify-write: without the lock, updates would be lost)
  DIRTY = 8 # 1 while /hold holds the lock "half-way through an update"
  REPAIRED_AT = 16 # CLOCK_MONOTONIC (ns) of the last repair
  DEAD_PID = 24 # pid of the owner that died, from the last OwnerDeadError
  STATE_SIZE = 32

  # What PS_EXAMPLE_NOOP=1 puts in the place of every object: each call does nothing (a block is run).
  class Noop
    def method_missing(_name, *_args, **_opts)
      block_given? ? yield : 0
    end

    def respond_to_missing?(*) = true
  end

  Objects = Struct.new(:counters, :lock, :state, :slots, :inside, :peak, :jobs, keyword_init: true)

  class << self
    # Opens (or creates) the named objects in this process. Call it after fork, in each worker: Unicorn's
    # after_fork, Puma's on_worker_boot. Then starts the thread that pops the Queue's jobs.
    def after_fork
      @objects = open_objects
      start_consumer
      @objects
    end

    def objects
      @objects ||= open_objects # a server without the hook (plain rackup)
    end

    def names
      %w[counters lock state slots inside peak jobs].map { |n| "#{PREFIX}.#{n}" }
    end

    private

    def open_objects
      return Objects.new(**Objects.members.to_h { |m| [m, Noop.new] }) if NOOP

      Objects.new(
        counters: ProcessShared::Counters.new(COUNTER_NAMES.size, name: "#{PREFIX}.counters"),
        lock: ProcessShared::Mutex.new(name: "#{PREFIX}.lock"),
        state: ProcessShared::SharedMemory.new(STATE_SIZE, name: "#{PREFIX}.state"),
        slots: ProcessShared::Semaphore.new(SLOTS, name: "#{PREFIX}.slots"),
        inside: ProcessShared::AtomicInteger.new(name: "#{PREFIX}.inside"),
        peak: ProcessShared::AtomicInteger.new(name: "#{PREFIX}.peak"),
        jobs: ProcessShared::Queue.new(capacity: 1 << 16, name: "#{PREFIX}.jobs")
      )
    end

    def start_consumer
      return if NOOP

      jobs = @objects.jobs
      counters = @objects.counters
      @consumer = Thread.new do
        while (job = jobs.pop)
          counters.incr(JOBS_DONE) if job.is_a?(Hash) && job["job"]
        end
      end
    end
  end

  # The Rack application.
  class App
    def call(env)
      case [env["REQUEST_METHOD"], env["PATH_INFO"]]
      in ["GET", "/ping"] then text(Process.pid.to_s)
      in ["GET", "/stats"] then json(stats)
      in ["GET", "/count"] then count
      in ["GET", "/scarce"] then scarce
      in ["POST", "/enqueue"] then enqueue
      in ["GET", "/hold"] then hold(env["QUERY_STRING"].to_s[/\bs=([\d.]+)/, 1].to_f)
      else [404, { "content-type" => "text/plain" }, ["not found\n"]]
      end
    end

    private

    def obj = ExampleApp.objects

    # Called holding the lock when the previous holder died inside it: the state may be half-updated.
    def repair(err)
      state = obj.state
      state.put_int64(ExampleApp::DIRTY, 0) # what /hold left half-done is undone
      state.put_int64(ExampleApp::DEAD_PID, err.pid || 0)
      state.put_int64(ExampleApp::REPAIRED_AT, Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond))
      obj.counters.incr(ExampleApp::REPAIRS)
    end

    def count
      obj.counters.incr(ExampleApp::REQUESTS)
      total = obj.lock.synchronize(on_owner_dead: method(:repair)) do
        state = obj.state
        raise "state left dirty: a dead holder was not repaired" if state.get_int64(ExampleApp::DIRTY) == 1

        total = state.get_int64(ExampleApp::TOTAL) + 1
        state.put_int64(ExampleApp::TOTAL, total)
        total
      end
      text(total.to_s)
    end

    def scarce
      obj.counters.incr(ExampleApp::REQUESTS)
      obj.slots.synchronize do
        now = obj.inside.increment
        obj.peak.update { |peak| [peak, now].max }
        sleep 0.01 # the scarce resource at work
        obj.inside.decrement
      end
      text("ok")
    end

    def enqueue
      obj.counters.incr(ExampleApp::REQUESTS)
      obj.jobs.push({ "job" => Process.pid }, timeout: 5) or return [503, {}, ["queue full\n"]]
      text("queued")
    end

    def hold(seconds)
      obj.counters.incr(ExampleApp::REQUESTS)
      obj.lock.synchronize(on_owner_dead: method(:repair)) do
        obj.state.put_int64(ExampleApp::DIRTY, 1) # half-way through an update...
        sleep seconds.clamp(0, ExampleApp::HOLD_MAX) # ...a SIGKILL now leaves it so
        obj.state.put_int64(ExampleApp::DIRTY, 0)
      end
      text("held")
    end

    def stats
      return { "noop" => true, "pid" => Process.pid } if ExampleApp::NOOP

      state = obj.state
      {
        "pid" => Process.pid, "ppid" => Process.ppid,
        "counters" => obj.counters.to_h(ExampleApp::COUNTER_NAMES),
        "total" => state.get_int64(ExampleApp::TOTAL), "dirty" => state.get_int64(ExampleApp::DIRTY),
        "repaired_at_ns" => state.get_int64(ExampleApp::REPAIRED_AT),
        "dead_pid" => state.get_int64(ExampleApp::DEAD_PID),
        "slots" => obj.slots.value, "inside" => obj.inside.value, "peak" => obj.peak.value,
        "queued" => obj.jobs.size, "lock_owner" => obj.lock.owner_pid
      }
    end

    def text(body) = [200, { "content-type" => "text/plain" }, [body]]
    def json(data) = [200, { "content-type" => "application/json" }, [JSON.generate(data)]]
  end
end
