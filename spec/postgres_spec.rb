# frozen_string_literal: true

require "spec_helper"
require_relative "support/postgres_server"
require "open3"

# What only the PostgreSQL backend has to show: sessions that end (SIGKILL, pg_terminate_backend, a server
# restart), fencing tokens, the server-side waits being cancelled, consumers dying mid-transaction, the
# kinds of connection it takes, and many processes at once. Times to recovery are printed.
RSpec.describe "ProcessShared::Postgres", :postgres do
  let(:described_class) { ProcessShared::Postgres }
  let!(:ns) { "pg-#{Process.pid}-#{rand(1 << 30)}" }
  let!(:cluster) { described_class.new(PostgresServer.url, namespace: ns) }
  let(:admin) { PostgresServer.connect }

  after do
    cluster.objects.each { |o| cluster.unlink(o[:name]) } unless @server_restarted && !cluster_up?
    cluster.close
    admin.close
  end

  def cluster_up?
    cluster.objects
    true
  rescue ProcessShared::Postgres::ConnectionError
    cluster.objects
    true
  end

  def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  def report(what, seconds)
    RSpec.configuration.reporter.message(format("    postgres: %<what>s in %<ms>.1f ms", what: what,
                                                                                         ms: seconds * 1000))
  end

  # A thread of its own (so a session of its own) that runs the block and then waits for the next one.
  def owner_thread
    inbox = Thread::Queue.new
    outbox = Thread::Queue.new
    t = Thread.new do
      while (job = inbox.pop)
        outbox << begin
          [:ok, job.call]
        rescue Exception => e # -- handed to the example
          [:error, e]
        end
      end
    end
    run = lambda do |&job|
      inbox << job
      kind, value = Timeout.timeout(20) { outbox.pop }
      kind == :error ? raise(value) : value
    end
    [run, t, inbox]
  end

  it "tells the next acquirer within 1 s that a SIGKILLed holder died holding the lock" do
    mutex = cluster.mutex("m")
    h = handshake
    pid = fork_child do
      mutex.lock
      h.signal
      sleep
    end
    h.wait
    Process.kill(:KILL, pid)
    started = monotonic
    Process.waitpid(pid)
    @__children.delete(pid)
    expect { mutex.lock }.to raise_error(ProcessShared::OwnerDeadError) # pid: nil (see Postgres::Mutex)
    took = monotonic - started
    report("SIGKILLed holder -> next acquirer holds it with OwnerDeadError", took)
    expect(took).to be < 1.0
    first = mutex.token
    mutex.unlock
    mutex.lock # no second report
    expect(mutex.token).to eq(first + 1)
    mutex.unlock
  end

  it "pg_terminate_backend of the holder: the next acquirer takes over, the holder gets LockLostError, " \
     "and the tokens fence the stale holder out" do
    run, thread, inbox = owner_thread
    mutex = cluster.mutex("fenced")
    admin.exec("CREATE TABLE IF NOT EXISTS ps_spec_resource (id int PRIMARY KEY, token bigint, value text)")
    admin.exec("INSERT INTO ps_spec_resource VALUES (1, 0, '') ON CONFLICT (id) DO UPDATE SET token = 0")
    write = lambda do |token, value|
      admin.exec_params("UPDATE ps_spec_resource SET token = $1, value = $2 WHERE id = 1 AND token < $1",
                        [token, value]).cmd_tuples == 1
    end
    stale, backend = run.call do
      mutex.lock
      [mutex.token, cluster.session.conn.backend_pid]
    end
    expect(write.call(stale, "old holder")).to be(true)
    expect(admin.exec_params("SELECT pg_terminate_backend($1, 5000)", [backend]).getvalue(0, 0)).to eq("t")
    started = monotonic
    expect { mutex.lock }.to raise_error(ProcessShared::OwnerDeadError)
    report("terminated holder's session -> next acquirer holds it", monotonic - started)
    fresh = mutex.token
    expect(fresh).to be > stale
    expect(write.call(fresh, "new holder")).to be(true)
    expect(write.call(stale, "old holder, late")).to be(false) # the fence
    expect { run.call { mutex.unlock } }.to raise_error(ProcessShared::LockLostError) { |e|
                                              expect(e.token).to eq(stale)
                                            }
    expect(run.call { mutex.owned? }).to be(false) # told once; the owner goes on with a new session
    mutex.unlock
    expect(run.call { mutex.synchronize { mutex.token } }).to eq(fresh + 1)
  ensure
    inbox&.close
    thread&.join(5)
    admin.exec("DROP TABLE IF EXISTS ps_spec_resource")
  end

  it "a holder that learns of the loss from owned? is told with LockLostError" do
    run, thread, inbox = owner_thread
    mutex = cluster.mutex("lost")
    backend = run.call do
      mutex.lock
      cluster.session.conn.backend_pid
    end
    admin.exec_params("SELECT pg_terminate_backend($1, 5000)", [backend])
    expect { run.call { mutex.owned? } }.to raise_error(ProcessShared::LockLostError)
  ensure
    inbox&.close
    thread&.join(5)
  end

  it "a server restart ends waits with ConnectionError (no hang), and the next calls reconnect", timeout: 60 do
    mutex = cluster.mutex("restart-m")
    sem = cluster.semaphore("restart-s", 0)
    h = handshake
    pid = fork_child do
      mutex.lock
      h.signal
      sleep
    end
    h.wait
    lock_waiter = blocked_thread { mutex.lock }
    sem_waiter = blocked_thread { sem.wait }
    sleep 0.2 # both are in their server-side waits (a generous bound; the outcome does not depend on it)
    started = monotonic
    @server_restarted = true
    PostgresServer.restart
    [lock_waiter, sem_waiter].each do |t|
      expect { t.join(20) }.to raise_error(ProcessShared::Postgres::ConnectionError)
    end
    report("server restart -> both waiters raised ConnectionError (restart included)", monotonic - started)
    kill_child(pid)
    expect { mutex.lock }.to raise_error(ProcessShared::Postgres::ConnectionError) # this thread's old session
    # A new session. The child's session ended with the restart, holding the lock: the next acquirer is told.
    expect { mutex.try_lock(5) }.to raise_error(ProcessShared::OwnerDeadError)
    expect(mutex.owned?).to be(true)
    mutex.unlock
    sem.post
    expect(sem.value).to eq(1)
  end

  it "cancels the server-side wait of an interrupted lock (Timeout), leaving no waiter and no lock" do
    rw = cluster.read_write_lock("cancel")
    h = handshake
    release = handshake
    pid = fork_child do
      rw.acquire_write_lock
      h.signal
      release.wait
      rw.release_write_lock
    end
    h.wait
    started = monotonic
    expect { Timeout.timeout(0.2) { rw.acquire_write_lock } }.to raise_error(Timeout::Error)
    expect(monotonic - started).to be < 1.0
    expect(rw.has_waiters?).to be(false)
    release.signal
    wait_child(pid)
    expect(rw.write_locked?).to be(false)
    expect(rw.try_write_lock(5)).to be(true)
    rw.release_write_lock
  end

  it "tells a reader, holding its share, that a writer died holding the lock; later readers are not told" do
    rw = cluster.read_write_lock("rw-dead")
    h = handshake
    pid = fork_child do
      rw.acquire_write_lock
      h.signal
      sleep
    end
    h.wait
    kill_child(pid)
    expect { rw.acquire_read_lock }.to raise_error(ProcessShared::OwnerDeadError)
    rw.release_read_lock
    expect(rw.with_read_lock { :read }).to eq(:read)
    expect(rw.with_write_lock { :written }).to eq(:written)
  end

  it "gives an element back when its consumer dies inside pop's block (before the commit)" do
    q = cluster.queue("jobs")
    q.push(:job1)
    q.push(:job2)
    h = handshake
    pid = fork_child do
      q.pop do |job|
        h.signal(job == :job1 ? "1" : "?")
        sleep
      end
    end
    expect(h.wait).to eq("1")
    expect(q.pop).to eq(:job2) # the other element is not blocked by the one being worked on
    kill_child(pid)
    expect(q.pop(timeout: 5)).to eq(:job1)
    q.push(:job3)
    expect { q.pop { |job| raise "failed #{job}" } }.to raise_error(RuntimeError, "failed job3")
    expect(q.pop(timeout: 5)).to eq(:job3)
  end

  it "works with one PG::Connection and with a callable (a pool)" do
    conn = PostgresServer.connect
    single = described_class.new(conn, namespace: ns)
    expect(single.atomic_integer("n").increment).to eq(1)
    pool = Thread::Queue.new
    3.times { pool << PostgresServer.connect }
    leased = {}
    pooled = described_class.new(-> { leased[Fiber.current] ||= pool.pop }, namespace: ns)
    expect(Array.new(2) { Thread.new { pooled.atomic_integer("n").increment } }.map(&:value).sort).to eq([2, 3])
    expect { described_class.new(42) }.to raise_error(TypeError)
    expect { described_class.new(PostgresServer.url, namespace: "bad name") }.to raise_error(ArgumentError)
    expect { cluster.mutex("bad/name") }.to raise_error(ArgumentError)
    expect { cluster.semaphore("bad-count", -1) }.to raise_error(ArgumentError)
    expect { cluster.barrier("bad-parties", "2") }.to raise_error(TypeError)
    expect { cluster.queue("bad-max", max: 0) }.to raise_error(ArgumentError)
    expect { cluster.counters("bad-size", 70_000) }.to raise_error(ArgumentError)
    expect(cluster.exist?("bad-count")).to be(false) # refused before anything was created
    cluster.mutex("kind")
    expect { cluster.semaphore("kind") }.to raise_error(ProcessShared::IncompatibleError)
  ensure
    conn&.close
    leased&.each_value(&:close)
  end

  it "runs the README's \"Many hosts\" example, on PostgreSQL and on this host" do
    readme = File.read(File.expand_path("../README.md", __dir__))
    code = readme[/## Many hosts.*?```ruby\n(.*?)```/m, 1]
    expect(code).to include("ProcessShared::Postgres.new")
    script = "ENV.delete('DATABASE_URL') if ARGV[0] == 'local'\n#{code}\n" \
             "objects.unlink('jobs'); objects.unlink('hits'); objects.unlink('mail')\n"
    lib = File.expand_path("../lib", __dir__)
    %w[postgres local].each do |where|
      out, status = Open3.capture2e({ "DATABASE_URL" => PostgresServer.url }, RbConfig.ruby, "-I", lib, "-e",
                                    script, where)
      expect(status.success?).to be(true), out
      expect(out).to eq("one process of any host at a time\ndeliver a@example.com\n")
    end
  end

  it "counts exactly with 8 processes doing mixed operations", timeout: 120 do
    mutex = cluster.mutex("mixed-m")
    sem = cluster.semaphore("mixed-s", 2)
    atomic = cluster.atomic_integer("mixed-a")
    plain = cluster.atomic_integer("mixed-plain")
    counters = cluster.counters("mixed-c", 8)
    q = cluster.queue("mixed-q")
    peak = cluster.atomic_integer("mixed-peak")
    inside = cluster.atomic_integer("mixed-inside")
    rounds = 20
    pids = Array.new(8) do |i|
      fork_child do
        rounds.times do |r|
          mutex.synchronize { plain.value = plain.value + 1 }
          atomic.increment
          counters.incr(i)
          q.push([i, r])
          sem.synchronize do
            now = inside.increment
            peak.update { |v| [v, now].max }
            inside.decrement
          end
        end
      end
    end
    wait_children(pids, timeout: 100)
    popped = Array.new(8 * rounds) { q.pop(timeout: 5) }
    expect([plain.value, atomic.value, counters.to_a]).to eq([8 * rounds, 8 * rounds, [rounds] * 8])
    expect(popped.compact.sort).to eq((0...8).flat_map { |i| (0...rounds).map { |r| [i, r] } })
    expect(peak.value).to be_between(1, 2)
    expect(q.size).to eq(0)
  end
end
