# frozen_string_literal: true

module ProcessShared
  class Postgres
    # @!visibility private
    # The one lock protocol of the backend (see {Schema}: +process_shared_lock+/+_unlock+), used by
    # {Mutex} and the write side of {ReadWriteLock}: an advisory lock of the owner's session, waited for in
    # the server's lock queue (with +lock_timeout+ for a deadline), plus the row naming the holder, so that
    # the next acquirer learns of a holder that died holding it, and a fencing token per acquisition.
    module ExclusiveLock
      # @return [Integer, nil] the fencing token of the calling owner's hold (strictly increasing across
      #   the acquisitions of this lock, by anyone); nil unless the caller holds it
      def token
        check_lost!
        @cluster.session.holds[@key]
      end

      private

      # Takes the lock (wait_ms: -1 forever, 0 try, else at most that many ms). True if taken; raises
      # OwnerDeadError holding it after a take-over.
      def acquire(wait_ms)
        check_lost!
        s = @cluster.session
        result = begin
          query("SELECT * FROM process_shared_lock($1, $2, $3, $4, $5, false, $6, $7)",
                [@ns, @name, @key, s.id, wait_ms, Process.pid, Base::HOST]) do |late|
            # Taken after all, as the interrupt came: give it back.
            release_taken(s) if late.ntuples == 1
          end
        rescue PG::Error => e
          raise ProcessError, "#{self.class}: this thread holds #{@name} already" if relock?(e)

          raise
        end
        return false if result.ntuples.zero?

        row = result[0]
        s.holds[@key] = row["token"]
        dead = row["dead_pid"]
        if dead
          raise OwnerDeadError.new("the owner of #{@name} (pid #{dead} on #{row["dead_host"]}) died holding it",
                                   pid: dead)
        end

        true
      end

      def release
        s = @cluster.session
        raise LockLostError.new("the lock #{@name} was lost with its connection", token: s.lost_holds.delete(@key)) if
          s.lost_holds.key?(@key)

        token = s.holds[@key]
        begin
          release_taken(s)
        rescue ConnectionError
          raise LockLostError.new("the lock #{@name} was lost with its connection", token: s.holds.delete(@key)) if
            token

          raise
        rescue PG::Error => e
          if e.result&.error_field(PG::PG_DIAG_SQLSTATE) == Session::NOT_HELD
            raise ProcessError,
                  "#{self.class}: this thread does not hold #{@name}"
          end

          raise
        end
      end

      def release_taken(session)
        session.call("SELECT process_shared_unlock($1, $2, $3, $4)", [@ns, @name, @key, session.id])
        session.holds.delete(@key)
      end

      def relock?(error) = error.result&.error_field(PG::PG_DIAG_SQLSTATE) == Session::RELOCK

      # Tells the owner, once, that a hold it had was lost with its connection.
      def check_lost!
        s = @cluster.session
        return unless s.lost_holds.key?(@key)

        raise LockLostError.new("the lock #{@name} was lost with its connection", token: s.lost_holds.delete(@key))
      end

      # Whether the calling owner holds it, asked of the server (so a lost connection shows).
      def held_by_caller?
        check_lost!
        s = @cluster.session
        return false unless s.holds.key?(@key)

        begin
          s.call("SELECT 1 FROM process_shared_objects WHERE namespace = $1 AND name = $2 AND holder_session = $3",
                 [@ns, @name, s.id]).ntuples == 1
        rescue ConnectionError
          raise LockLostError.new("the lock #{@name} was lost with its connection", token: s.holds.delete(@key))
        end
      end

      def synchronized(on_owner_dead)
        raise ThreadError, "must be called with a block" unless block_given?

        unless on_owner_dead.nil? || on_owner_dead.respond_to?(:call)
          raise TypeError,
                "on_owner_dead must respond to call"
        end

        begin
          acquire(-1)
        rescue OwnerDeadError => e
          repaired = false
          begin
            raise unless on_owner_dead

            on_owner_dead.call(e)
            repaired = true
          ensure
            release unless repaired # whatever ended the handler (an exception, a throw)
          end
        end
        begin
          yield
        ensure
          release
        end
      end
    end

    # A mutex in the database: owned by one owner (a thread or fiber with its own session) on any host.
    # The methods of {ProcessShared::Mutex}, plus {#token}.
    class Mutex < Base
      include ExclusiveLock

      def initialize(cluster, name)
        super(cluster, name, "mutex")
      end

      # @return [self]
      # @raise [ProcessError] if the caller holds it already
      # @raise [OwnerDeadError] holding the lock, if its previous holder died holding it
      # @raise [LockLostError] if the caller's hold was lost with its connection (not held afterwards)
      def lock
        acquire(-1)
        self
      end

      # @param timeout [Numeric, nil] seconds to wait (nil or 0: do not wait)
      # @return [Boolean] whether it was taken
      def try_lock(timeout = nil)
        acquire(timeout.nil? ? 0 : milliseconds(timeout))
      rescue ProcessError
        false
      end

      # @return [self]
      # @raise [ProcessError] unless the caller holds it
      # @raise [LockLostError] if the caller's hold was lost with its connection
      def unlock
        release
        self
      end

      # @return [Boolean] whether any owner holds it
      def locked?
        check_lost!
        value_of("SELECT process_shared_held(key, true) FROM process_shared_objects " \
                 "WHERE namespace = $1 AND name = $2")
      end

      # @return [Boolean] whether the caller holds it
      def owned? = held_by_caller?

      # @return [Integer, nil] pid (on its host) of the holder's process
      def owner_pid
        value_of("SELECT holder_pid FROM process_shared_objects WHERE namespace = $1 AND name = $2 " \
                 "AND process_shared_held(key, true)")
      end

      # Locks, runs the block, unlocks; as {ProcessShared::Mutex#synchronize} (+on_owner_dead:+ included).
      def synchronize(on_owner_dead: nil, &block) = synchronized(on_owner_dead, &block)

      # Unlocks, sleeps (at most +timeout+ seconds), locks again.
      # @return [Integer] seconds slept, rounded
      def sleep(timeout = nil)
        seconds(timeout) unless timeout.nil?
        unlock
        start = now
        begin
          timeout.nil? ? Kernel.sleep : Kernel.sleep(timeout)
        ensure
          lock
        end
        (now - start).round
      end
    end

    # A readers-writer lock in the database: shared and exclusive advisory locks (the server queues a new
    # reader behind a waiting writer, so writers are not starved). The methods of
    # {ProcessShared::ReadWriteLock}; a writer that dies holding it is reported to the next acquirer
    # ({OwnerDeadError}); readers that die release their share.
    class ReadWriteLock < Base
      include ExclusiveLock

      def initialize(cluster, name)
        super(cluster, name, "read_write_lock")
      end

      # @return [true]
      def acquire_read_lock
        take_read(-1)
      end

      # @return [Boolean] whether a share was taken within +timeout+ seconds (nil: do not wait)
      def try_read_lock(timeout = nil) = take_read(timeout.nil? ? 0 : milliseconds(timeout))

      # @return [true]
      # @raise [ProcessError] unless the caller holds a share
      def release_read_lock
        # Asked first, so that the server does not warn of a lock this session does not hold.
        ok = value_of(<<~SQL)
          SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = pg_backend_pid()
                           AND l.locktype = 'advisory' AND l.mode = 'ShareLock' AND l.granted AND l.objsubid = 1
                           AND l.classid = ((o.key >> 32) & 4294967295)::oid AND l.objid = (o.key & 4294967295)::oid)
                      THEN pg_advisory_unlock_shared(o.key) ELSE false END
            FROM process_shared_objects o WHERE o.namespace = $1 AND o.name = $2
        SQL
        raise ProcessError, "#{self.class}: this thread holds no read lock on #{@name}" unless ok

        true
      end

      # @return [true]
      def acquire_write_lock = acquire(-1)

      # @return [Boolean]
      def try_write_lock(timeout = nil)
        acquire(timeout.nil? ? 0 : milliseconds(timeout))
      rescue ProcessError
        false
      end

      # @return [true]
      def release_write_lock
        release
        true
      end

      def with_read_lock
        raise ThreadError, "must be called with a block" unless block_given?

        acquire_read_lock
        begin
          yield
        ensure
          release_read_lock
        end
      end

      # Takes the write lock, runs the block, releases it; +on_owner_dead:+ as {Mutex#synchronize}.
      # @return [Object] the block's value
      def with_write_lock(on_owner_dead: nil, &block) = synchronized(on_owner_dead, &block)

      # @return [Boolean] whether a writer holds it
      def write_locked?
        value_of("SELECT process_shared_held(key, true) FROM process_shared_objects " \
                 "WHERE namespace = $1 AND name = $2")
      end

      # @return [Boolean] whether anyone waits for it (concurrent-ruby's name)
      def has_waiters?
        value_of(<<~SQL)
          SELECT EXISTS (SELECT 1 FROM pg_locks l, process_shared_objects o
            WHERE o.namespace = $1 AND o.name = $2 AND l.locktype = 'advisory' AND NOT l.granted
              AND l.objsubid = 1 AND l.classid = ((o.key >> 32) & 4294967295)::oid
              AND l.objid = (o.key & 4294967295)::oid)
        SQL
      end

      private

      def take_read(wait_ms)
        s = @cluster.session
        result = query("SELECT * FROM process_shared_lock($1, $2, $3, $4, $5, true, $6, $7)",
                       [@ns, @name, @key, s.id, wait_ms, Process.pid, Base::HOST]) do |late|
          query("SELECT pg_advisory_unlock_shared($1)", [@key]) if late.ntuples == 1
        end
        return false if result.ntuples.zero?

        dead = result[0]["dead_pid"]
        raise OwnerDeadError.new("the writer of #{@name} (pid #{dead}) died holding it", pid: dead) if dead

        true
      end
    end
  end
end
