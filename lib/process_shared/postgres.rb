# frozen_string_literal: true

require "pg"
require "digest"
require "securerandom"
require "process_shared"
require "process_shared/postgres/schema"

module ProcessShared
  # The same primitives as the local classes, kept in a PostgreSQL database, so that processes on many
  # hosts share them. Every object is named (unique in the cluster's namespace) and lives in the database
  # until {#unlink}ed.
  #
  #   cluster = ProcessShared::Postgres.new(ENV.fetch("DATABASE_URL"), namespace: "myapp")
  #   jobs = cluster.mutex("jobs")
  #   jobs.synchronize { ... }             # exclusive across every process on every host
  #   jobs.token                           # inside: the fencing token of this hold
  #
  # Connections: advisory locks and LISTEN belong to a database session, so each owner (a thread, or a
  # fiber) needs a session of its own. Given a URL (or a +PG.connect+ Hash), the cluster opens one
  # connection per owner when the owner first needs it (and a new one after a fork). Given a callable, it
  # calls it for that connection instead (for a pool). Given a +PG::Connection+, every owner in the process
  # shares its session: then threads of one process do not exclude each other (use it from one thread).
  class Postgres
    # The connection to the server was lost during a call that held nothing (a wait, an update): the call
    # may or may not have taken effect. The next call opens a new connection. An +IOError+.
    class ConnectionError < IOError
      include Error
    end

    # What a name or namespace may be: as a local named object's name.
    NAME = /\A[A-Za-z0-9._-]{1,200}\z/

    # @return [String] the namespace every name of this cluster lives in
    attr_reader :namespace

    # @param connection [String, Hash, #call, PG::Connection] a URL or +PG.connect+ Hash (a connection per
    #   owner), a callable answering the calling owner's connection, or one connection for the process
    # @param namespace [String] names are unique within it (1–200 characters of +[A-Za-z0-9._-]+)
    # @raise [ArgumentError] for a bad namespace
    # @raise [TypeError] for another kind of +connection+
    def initialize(connection, namespace: "default")
      raise ArgumentError, "namespace must be 1..200 characters of [A-Za-z0-9._-], got #{namespace.inspect}" unless
        namespace.is_a?(String) && NAME.match?(namespace)

      @namespace = namespace.dup.freeze
      @shared = nil
      case connection
      when String, Hash then @connect = -> { PG.connect(connection) }
      when PG::Connection then @shared = Session.new(connection)
      else
        unless connection.respond_to?(:call)
          raise TypeError,
                "connection must be a URL, a Hash, a callable or a PG::Connection, got #{connection.class}"
        end

        @connect = connection
      end
      @owner_key = :"__process_shared_postgres_#{object_id}"
      @orphans = [] # sessions inherited over fork: never closed here, that would end the parent's
      install_schema
    end

    # @!group Objects (each opened by name, created if missing)

    # @return [Postgres::Mutex]
    def mutex(name) = Mutex.new(self, name)

    # @return [Postgres::Semaphore]
    def semaphore(name, count = 1) = Semaphore.new(self, name, count)

    # @return [Postgres::ReadWriteLock]
    def read_write_lock(name) = ReadWriteLock.new(self, name)

    # @return [Postgres::ConditionVariable]
    def condition_variable(name) = ConditionVariable.new(self, name)

    # @return [Postgres::Event]
    def event(name) = Event.new(self, name)

    # @return [Postgres::CountDownLatch]
    def count_down_latch(name, count) = CountDownLatch.new(self, name, count)

    # @return [Postgres::Barrier]
    def barrier(name, parties) = Barrier.new(self, name, parties)

    # @return [Postgres::AtomicInteger]
    def atomic_integer(name, initial = 0) = AtomicInteger.new(self, name, initial)

    # @return [Postgres::Counters]
    def counters(name, size) = Counters.new(self, name, size)

    # @return [Postgres::Queue]
    def queue(name, max: nil) = Queue.new(self, name, max: max)

    # @!endgroup

    # Removes the object of that name (its state, elements and waiters' rows); owners holding it keep
    # their advisory locks until they unlock.
    # @return [Boolean] whether there was one
    def unlink(name)
      check_name(name)
      query("SELECT process_shared_unlink($1, $2)", [namespace, name]).getvalue(0, 0)
    end

    # @return [Boolean] whether an object of that name exists
    def exist?(name)
      check_name(name)
      query("SELECT 1 FROM process_shared_objects WHERE namespace = $1 AND name = $2", [namespace, name]).ntuples == 1
    end

    # Every object of the namespace: name, kind, params, value, and the backend pid of a lock's holder.
    # @return [Array<Hash>]
    def objects
      query(<<~SQL, [namespace]).map { |r| r.transform_keys(&:to_sym) }
        SELECT name, kind, params, value, process_shared_holder(key) AS holder_backend_pid
          FROM process_shared_objects WHERE namespace = $1 ORDER BY name
      SQL
    end

    # Closes the connections this cluster opened for the calling owner (others close theirs when their
    # thread ends and the connection is collected).
    # @return [nil]
    def close
      s = Thread.current[@owner_key]
      Thread.current[@owner_key] = nil
      s&.finish
      nil
    end

    # @!visibility private
    # The calling owner's session (opened on first use, and again after a fork or a lost connection).
    def session
      if @shared
        raise ProcessError, "a PG::Connection cannot be used after fork; give a URL or a callable" unless
          @shared.pid == Process.pid

        return @shared
      end
      s = Thread.current[@owner_key]
      return s if s&.usable?

      @orphans << s if s && s.pid != Process.pid
      conn = @connect.call
      raise TypeError, "the connection callable answered #{conn.class}, not a PG::Connection" unless
        conn.is_a?(PG::Connection)

      fresh = Session.new(conn)
      # The owner is told of each lock it held through the lost session on its next call on that lock.
      fresh.lost_holds.update(s.lost_holds, s.holds) if s && s.pid == Process.pid
      Thread.current[@owner_key] = fresh
    end

    # @!visibility private
    def check_name(name)
      raise TypeError, "name must be a String, got #{name.class}" unless name.is_a?(String)
      raise ArgumentError, "name must be 1..200 characters of [A-Za-z0-9._-], got #{name.inspect}" unless
        NAME.match?(name)
    end

    # @!visibility private
    # The advisory-lock key of a name: the first 8 bytes of SHA-256 over namespace and name, as a signed
    # 64-bit integer (the argument type of +pg_advisory_lock+).
    def key(name) = Digest::SHA256.digest("#{namespace}\0#{name}").unpack1("q>")

    # @!visibility private
    def query(sql, params = [], &undo) = session.call(sql, params, &undo)

    private

    def install_schema
      s = session
      return if s.call("SELECT to_regclass('process_shared_schema') IS NOT NULL AS t").getvalue(0, 0) &&
                s.call("SELECT max(version) FROM process_shared_schema").getvalue(0, 0).to_i >= Schema::VERSION

      s.conn.transaction do |c|
        c.exec("SET LOCAL client_min_messages = warning")
        c.exec_params("SELECT pg_advisory_xact_lock($1)", [Schema::INSTALL_KEY])
        c.exec(Schema::SQL)
        c.exec_params("UPDATE process_shared_schema SET version = $1", [Schema::VERSION])
      end
    end
  end
end

require "process_shared/postgres/session"
require "process_shared/postgres/objects"
