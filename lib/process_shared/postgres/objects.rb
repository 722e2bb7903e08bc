# frozen_string_literal: true

require "process_shared/postgres/base"
require "process_shared/postgres/locks"

module ProcessShared
  class Postgres
    # A counting semaphore in the database; the methods of {ProcessShared::Semaphore}. Permits are not
    # owned: one taken by a process that then dies stays taken (as locally).
    class Semaphore < Base
      # The most permits a semaphore holds (as locally).
      MAX = 2**31 - 1

      def initialize(cluster, name, count = 1)
        integer_in(count, "count", 0..MAX)

        super(cluster, name, "semaphore", "", value: count)
      end

      # Takes a permit, waiting for one. @return [nil]
      def wait
        wait_for(nil) { |s| take(s) || nil }
        nil
      end

      # Takes a permit without waiting (no timeout: raises Errno::EAGAIN if none) or within +timeout+
      # seconds (raises Errno::ETIMEDOUT). @return [nil]
      def try_wait(timeout = nil)
        if timeout.nil?
          raise Errno::EAGAIN, "semaphore #{@name} has no permit" unless take(@cluster.session)
        else
          raise Errno::ETIMEDOUT, "semaphore #{@name}" unless wait_for(deadline(timeout)) { |s| take(s) || nil }
        end
        nil
      end

      # Returns a permit, waking a waiter. @return [nil]
      def post
        raise RangeError, "semaphore #{@name} is at its maximum #{MAX}" if
          value_of("SELECT process_shared_add($1, $2, 1, 0, $3, $4)", MAX, @channel).nil?

        nil
      end

      # @return [Integer] permits available now
      def value = value_of("SELECT value FROM process_shared_objects WHERE namespace = $1 AND name = $2")

      def synchronize
        raise ThreadError, "must be called with a block" unless block_given?

        wait
        begin
          yield
        ensure
          post
        end
      end

      private

      def take(session)
        !session.call("SELECT process_shared_add($1, $2, -1, 0, $3, NULL)", [@ns, @name, MAX]) do |late|
          post unless late&.getvalue(0, 0).nil? # taken after all, as the interrupt came: give it back
        end.getvalue(0, 0).nil?
      end
    end

    # A condition variable in the database, for {Postgres::Mutex}. Each waiter has a row (oldest first);
    # +signal+ wakes the oldest whose session is alive through its session's channel.
    class ConditionVariable < Base
      def initialize(cluster, name)
        super(cluster, name, "condition_variable")
      end

      # Releases +mutex+, waits for a signal (at most +timeout+ seconds), takes +mutex+ again.
      # @param mutex [Postgres::Mutex]
      # @return [Boolean] true when signalled, false on timeout
      # @raise [ProcessError] unless the caller holds +mutex+
      # @raise [OwnerDeadError] holding +mutex+, if its holder died meanwhile
      def wait(mutex, timeout = nil)
        raise TypeError, "#{self.class}#wait needs a #{Postgres::Mutex}, got #{mutex.class}" unless
          mutex.is_a?(Postgres::Mutex)

        limit = deadline(timeout)
        raise ProcessError, "#{self.class}#wait: the calling thread does not hold #{mutex.name}" if mutex.token.nil?

        s = @cluster.session
        id = value_of("INSERT INTO process_shared_waiters (namespace, name, session) VALUES ($1, $2, $3) " \
                      "RETURNING id", s.id)
        mutex.unlock
        woken = false
        Thread.handle_interrupt(Object => :never) do
          Thread.handle_interrupt(Object => :immediate) { woken = signalled?(s, id, limit) }
        ensure
          woken = finish(id, woken, mutex)
        end
        woken
      end

      # Wakes the oldest waiter. @return [self]
      def signal
        value_of("SELECT process_shared_wake($1, $2, false)")
        self
      end

      # Wakes every waiter. @return [self]
      def broadcast
        value_of("SELECT process_shared_wake($1, $2, true)")
        self
      end

      private

      def signalled?(session, id, limit)
        mine = ["ps_s_#{session.id}", id.to_s]
        loop do
          remaining = limit && (limit - now)
          return false if remaining && remaining <= 0
          return true if session.wait_for_notify(remaining) == mine
        end
      end

      # Leaves the queue and takes the mutex again; answers whether the wait was woken. A signal that chose
      # this waiter as it gave up counts as a wake-up, or is passed on when an interrupt ends the wait.
      def finish(id, woken, mutex)
        return true if woken

        chosen = query("DELETE FROM process_shared_waiters WHERE id = $1", [id]).cmd_tuples.zero?
        signal if chosen && Thread.pending_interrupt?
        chosen
      ensure
        mutex.lock
      end
    end

    # A signed 64-bit integer in the database; the methods of {ProcessShared::AtomicInteger}.
    class AtomicInteger < Base
      def initialize(cluster, name, initial = 0)
        super(cluster, name, "atomic_integer", "", value: int64(initial, "initial"))
      end

      # @return [Integer]
      def value = value_of("SELECT value FROM process_shared_objects WHERE namespace = $1 AND name = $2")

      # Sets it (a RangeError outside int64).
      def value=(v)
        value_of("SELECT process_shared_set($1, $2, $3, NULL)", int64(v))
      end

      # @return [Integer] the new value (wraps as C int64_t)
      def increment(delta = 1)
        add("process_shared_objects", "", int64(delta, "delta"))
      end

      # @return [Integer] the new value
      def decrement(delta = 1) = increment(negated(int64(delta, "delta")))

      # @return [Boolean]
      def compare_and_set(expected, new)
        !value_of("UPDATE process_shared_objects SET value = $4 WHERE namespace = $1 AND name = $2 " \
                  "AND value = $3 RETURNING 1", int64(expected, "expected"), int64(new, "new")).nil?
      end

      # @return [Integer] the old value
      def get_and_set(new) = value_of("SELECT process_shared_set($1, $2, $3, NULL)", int64(new, "new"))

      # @return [Integer] the new value
      def update
        loop do
          old = value
          new = yield(old)
          return new if compare_and_set(old, new)
        end
      end
    end

    # +size+ independent 64-bit counters in the database (a row each); the methods of
    # {ProcessShared::Counters}.
    class Counters < Base
      # @return [Integer]
      attr_reader :size

      def initialize(cluster, name, size)
        integer_in(size, "size", 1..65_536)

        @size = size
        super(cluster, name, "counters", size.to_s, cells: size)
      end

      # Adds +delta+ to counter +index+ (negative counts from the end; IndexError outside).
      # @return [Integer] the new value
      def incr(index, delta = 1)
        value_of("UPDATE process_shared_counters SET value = process_shared_wrap(value::numeric + $4) " \
                 "WHERE namespace = $1 AND name = $2 AND idx = $3 RETURNING value", cell(index),
                 int64(delta, "delta"))
      end

      # @return [Integer] the new value
      def decr(index, delta = 1) = incr(index, -int64(delta, "delta"))

      # @return [Integer] counter +index+
      def [](index)
        value_of("SELECT value FROM process_shared_counters WHERE namespace = $1 AND name = $2 AND idx = $3",
                 cell(index))
      end

      # Sets counter +index+.
      def []=(index, v)
        value_of("UPDATE process_shared_counters SET value = $4 WHERE namespace = $1 AND name = $2 AND idx = $3",
                 cell(index), int64(v))
      end

      # @return [Array<Integer>] every counter, in order
      def to_a
        query("SELECT value FROM process_shared_counters WHERE namespace = $1 AND name = $2 ORDER BY idx",
              [@ns, @name]).column_values(0)
      end

      # @return [Hash{Integer=>Integer}] index => value (as {ProcessShared::Counters#to_h})
      def to_h = to_a.each_with_index.to_h { |v, i| [i, v] }

      private

      def cell(index)
        raise TypeError, "index must be an Integer, got #{index.class}" unless index.is_a?(Integer)

        i = index.negative? ? index + @size : index
        raise IndexError, "index #{index} outside 0...#{@size}" unless i.between?(0, @size - 1)

        i
      end
    end

    # A flag in the database that owners wait for; the methods of {ProcessShared::Event}.
    class Event < Base
      def initialize(cluster, name)
        super(cluster, name, "event")
      end

      # @return [true]
      def set
        try?
        true
      end

      # @return [Boolean] whether this call set it
      def try? = value_of("SELECT process_shared_set($1, $2, 1, $3)", @channel).zero?

      # @return [true]
      def reset
        value_of("SELECT process_shared_set($1, $2, 0, NULL)")
        true
      end

      def set? = value_of("SELECT value FROM process_shared_objects WHERE namespace = $1 AND name = $2") == 1

      # @return [Boolean] true once set (also if set and reset meanwhile), false on timeout
      def wait(timeout = nil)
        limit = deadline(timeout)
        first = nil
        !wait_for(limit) do
          value, generation = query("SELECT value, generation FROM process_shared_objects " \
                                    "WHERE namespace = $1 AND name = $2", [@ns, @name]).values[0]
          first ||= generation
          value == 1 || generation != first ? true : nil
        end.nil?
      end
    end

    # A count in the database that owners wait to reach 0; the methods of {ProcessShared::CountDownLatch}.
    class CountDownLatch < Base
      def initialize(cluster, name, count)
        integer_in(count, "count", 0..Semaphore::MAX)

        super(cluster, name, "count_down_latch", count.to_s, value: count)
      end

      # @return [nil]
      def count_down
        value_of("SELECT process_shared_add($1, $2, -1, 0, $3, $4)", Semaphore::MAX, @channel)
        nil
      end

      # @return [Integer]
      def count = value_of("SELECT value FROM process_shared_objects WHERE namespace = $1 AND name = $2")

      # @return [Boolean] true when it reached 0, false on timeout
      def wait(timeout = nil)
        !wait_for(deadline(timeout)) { count.zero? ? true : nil }.nil?
      end
    end

    # A reusable barrier in the database; the methods of {ProcessShared::Barrier}.
    class Barrier < Base
      # @return [Integer]
      attr_reader :parties

      def initialize(cluster, name, parties)
        integer_in(parties, "parties", 1..Semaphore::MAX)

        @parties = parties
        super(cluster, name, "barrier", parties.to_s)
      end

      # @return [Boolean] true when every party arrived, false on timeout (which breaks the barrier)
      def wait(timeout = nil)
        limit = deadline(timeout)
        gen = value_of("SELECT process_shared_arrive($1, $2, $3, $4)", @parties, @channel)
        return false if gen == -1
        return true if gen == -2

        tripped = nil
        Thread.handle_interrupt(Object => :never) do
          Thread.handle_interrupt(Object => :immediate) { tripped = outcome(gen, limit) }
        ensure
          # A timeout breaks it; an interrupt takes the arrival back (unless it tripped meanwhile).
          if tripped.nil? && !Thread.pending_interrupt?
            tripped = value_of("SELECT process_shared_break($1, $2, $3, $4)", gen, @channel)
          elsif tripped.nil?
            value_of("UPDATE process_shared_objects SET value = value - 1 WHERE namespace = $1 AND name = $2 " \
                     "AND generation = $3 AND value > 0 RETURNING 1", gen)
          end
        end
        tripped
      end

      # @return [Integer] parties waiting now
      def number_waiting = value_of("SELECT value FROM process_shared_objects WHERE namespace = $1 AND name = $2")

      def broken? = value_of("SELECT broken FROM process_shared_objects WHERE namespace = $1 AND name = $2")

      # Mends a broken barrier (waiters of the old generation return false). @return [nil]
      def reset
        value_of("UPDATE process_shared_objects SET broken = false, value = 0, generation = generation + 1 " \
                 "WHERE namespace = $1 AND name = $2")
        query("SELECT pg_notify($1, '')", [@channel])
        nil
      end

      private

      # true once the generation moved on, false if it broke, nil on timeout.
      def outcome(gen, limit)
        wait_for(limit) do
          generation, broken = query("SELECT generation, broken FROM process_shared_objects " \
                                     "WHERE namespace = $1 AND name = $2", [@ns, @name]).values[0]
          if generation != gen then true
          elsif broken then false
          end
        end
      end
    end
  end
end

require "process_shared/postgres/queue"
