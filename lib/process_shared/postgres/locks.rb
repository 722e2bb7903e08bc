# frozen_string_literal: true

module ProcessShared
  class Postgres
    # @!visibility private
    # The one lock protocol of the backend (see {Schema}: +process_shared_lock+ and +_unlock+), used by
    # {Mutex} and {ReadWriteLock}: an advisory lock of the owner's session, waited for in the server's lock
    # queue (with +lock_timeout+ for a deadline), and the lock's two sequences, which tell the next acquirer
    # of a holder that died holding it and give each acquisition its fencing token. Which locks the owner
    # holds, the session records ({Session#holds}): a session is one owner's.
    module ExclusiveLock
      # @return [Integer, nil] the fencing token of the calling owner's hold (strictly increasing across
      #   the acquisitions of this lock, by anyone); nil unless the caller holds it
      def token
        check_lost!
        @cluster.session.holds[@key]
      end

      private

      # The fast path of an exclusive acquire: takes the lock if it is free and advances the sequence
      # (CASE orders the two); NULL if the lock is held.
      TRY_LOCK = "SELECT CASE WHEN pg_try_advisory_lock($1) THEN nextval($2::regclass) END"
      # An even value after the advance: the last holder died; one more advance marks its hold released.
      ADVANCE = "SELECT nextval($1::regclass)"
      # The fast path of a read lock: the share if no writer holds it, and the sequence's value then (odd:
      # the last writer died holding it).
      TRY_READ = "SELECT CASE WHEN pg_try_advisory_lock_shared($1) THEN " \
                 "coalesce(pg_sequence_last_value($2::regclass), 0) END"
      AFTER_READ = "SELECT * FROM process_shared_after_read_lock($1)"
      WAIT = "SELECT * FROM process_shared_lock($1, $2, $3, $4)"
      # A clean release: the sequence advances before the advisory lock goes (CASE orders them), so an
      # acquirer never finds the lock free and the value odd.
      UNLOCK = "SELECT CASE WHEN nextval($2::regclass) > 0 THEN pg_advisory_unlock($1) END"

      def seq = @seq ||= "process_shared_lock_#{[@key].pack("q>").unpack1("H*")}"

      # Takes the lock (wait_ms: -1 forever, 0 try, else at most that many ms). True if taken; raises
      # OwnerDeadError holding it after a take-over.
      def acquire(wait_ms, shared: false)
        check_lost!
        s = @cluster.session
        raise ProcessError, "#{self.class}: this thread holds #{@name} already" if !shared && s.holds.key?(@key)

        value, dead = shared ? take_read(s, wait_ms) : take(s, wait_ms)
        return false if value.nil?

        shared ? s.shares[@key] += 1 : s.holds[@key] = (value + 1) / 2
        raise OwnerDeadError, "a holder of #{@name} died holding it (its database session ended)" if dead

        true
      end

      # [value, dead] once taken; nil if not.
      def take(session, wait_ms)
        value = session.call(TRY_LOCK, [@key, seq]) { give_back(session, false) }.getvalue(0, 0)
        return [value, false] if value&.odd?
        return [session.call(ADVANCE, [seq]) { give_back(session, false) }.getvalue(0, 0), true] if value
        return nil if wait_ms.zero?

        waited(session, wait_ms, false)
      end

      def take_read(session, wait_ms)
        value = session.call(TRY_READ, [@key, seq]) { give_back(session, true) }.getvalue(0, 0)
        return [value, false] if value&.even?
        return session.call(AFTER_READ, [seq]) { give_back(session, true) }.values[0] if value
        return nil if wait_ms.zero?

        waited(session, wait_ms, true)
      end

      # The slow path: waits in the server's lock queue. An interrupt cancels the wait; what it took anyway
      # is given back.
      def waited(session, wait_ms, shared)
        result = session.call(WAIT, [@key, seq, wait_ms, shared]) { give_back(session, shared) }
        result.ntuples.zero? ? nil : result.values[0]
      end

      # After an interrupted statement of an acquire (Session#call runs this whether the statement finished
      # or was cancelled): session locks outlive statements, so the server is asked whether this session
      # holds the lock, and what it holds is released.
      def give_back(session, shared)
        return unless session.call("SELECT process_shared_mine($1, $2)", [@key, shared]).getvalue(0, 0)

        if shared
          session.call("SELECT pg_advisory_unlock_shared($1)", [@key])
        else
          session.call("SELECT process_shared_unlock_after_cancel($1, $2)", [@key, seq])
        end
      end

      def release
        s = @cluster.session
        check_lost!
        token = s.holds[@key]
        raise ProcessError, "#{self.class}: this thread does not hold #{@name}" unless token

        begin
          s.holds.delete(@key)
          s.call(UNLOCK, [@key, seq])
        rescue ConnectionError
          raise lost(token)
        end
      end

      def lost(token) = LockLostError.new("the lock #{@name} was lost with its connection", token: token)

      # Tells the owner, once, that a hold it had was lost with its connection.
      def check_lost!
        s = @cluster.session
        return unless s.lost_holds.key?(@key)

        raise lost(s.lost_holds.delete(@key))
      end

      # Whether the calling owner holds it; the session is asked to answer, so a lost connection shows.
      def held_by_caller?
        check_lost!
        s = @cluster.session
        return false unless s.holds.key?(@key)

        begin
          s.call("SELECT 1")
          true
        rescue ConnectionError
          raise lost(s.holds.delete(@key))
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

      # @return [Integer, nil] the backend pid of the holder's database session (its process may be on
      #   another host; +pg_stat_activity+ tells more)
      def owner_pid = query("SELECT process_shared_holder($1)", [@key]).getvalue(0, 0)

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
        read_lock(-1)
      end

      # @return [Boolean] whether a share was taken within +timeout+ seconds (nil: do not wait)
      def try_read_lock(timeout = nil) = read_lock(timeout.nil? ? 0 : milliseconds(timeout))

      # @return [true]
      # @raise [ProcessError] unless the caller holds a share
      def release_read_lock
        s = @cluster.session
        raise ProcessError, "#{self.class}: this thread holds no read lock on #{@name}" unless s.shares[@key].positive?

        s.shares[@key] -= 1
        s.call("SELECT pg_advisory_unlock_shared($1)", [@key])
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

      def read_lock(wait_ms) = acquire(wait_ms, shared: true)
    end
  end
end
