# frozen_string_literal: true

module ProcessShared
  class Postgres
    # A FIFO of Marshal'ed objects in a table; the methods of {ProcessShared::Queue} (+max:+ bounds the
    # number of elements; there is no byte +capacity+). Poppers take the oldest element no other
    # transaction has locked (+FOR UPDATE SKIP LOCKED+), so they never wait on each other.
    #
    # An element is gone only when the popping transaction commits. {#pop} commits before it answers;
    # with a block, +pop { |obj| ... }+ commits only after the block returned, so an element whose consumer
    # dies (or raises) inside the block goes back to the queue for another consumer.
    class Queue < Base
      # @return [Integer, nil]
      attr_reader :max

      def initialize(cluster, name, max: nil)
        integer_in(max, "max", 1..Semaphore::MAX) unless max.nil?
        @max = max
        super(cluster, name, "queue", max.to_s)
      end

      # Appends +obj+, waiting while the queue holds +max+ elements.
      # @return [self, nil] nil if the timeout passed first
      # @raise [ThreadError] if +non_block+ and the queue is full
      # @raise [ClosedQueueError] if the queue is closed
      # @raise [TypeError] if Marshal cannot dump +obj+ (nothing is enqueued)
      def push(obj, non_block = false, timeout: nil) # rubocop:disable Style/OptionalBooleanParameter -- SizedQueue's
        raise ArgumentError, "can't set a timeout if non_block is enabled" if non_block && !timeout.nil?

        item = { value: Marshal.dump(obj), format: 1 }
        attempt = -> { offer(item) }
        return self if (non_block || timeout == 0) && attempt.call # rubocop:disable Style/NumericPredicate
        raise ThreadError, "queue full" if non_block
        return nil if timeout == 0 # rubocop:disable Style/NumericPredicate

        wait_for(deadline(timeout), waiter: true) { attempt.call || nil } ? self : nil
      end
      alias << push
      alias enq push

      # Removes and returns the oldest element, waiting while the queue is empty; with a block, yields it
      # and removes it only when the block returns (answering the block's value).
      # @return [Object, nil] nil on timeout, or when the queue is closed and empty
      # @raise [ThreadError] if +non_block+ and the queue is empty
      def pop(non_block = false, timeout: nil, &block) # rubocop:disable Style/OptionalBooleanParameter -- Queue's
        raise ArgumentError, "can't set a timeout if non_block is enabled" if non_block && !timeout.nil?

        limit = non_block ? now : deadline(timeout)
        got = wait_for(limit, waiter: !non_block) { |s| block ? take_in_transaction(s, &block) : take(s) }
        raise ThreadError, "queue empty" if got.nil? && non_block

        got&.first
      end
      alias shift pop
      alias deq pop

      # @return [Integer]
      def size
        value_of("SELECT count(*) FROM process_shared_items WHERE namespace = $1 AND name = $2")
      end
      alias length size

      def empty? = size.zero?

      # @return [self]
      def clear
        query("WITH d AS (DELETE FROM process_shared_items WHERE namespace = $1 AND name = $2) " \
              "SELECT pg_notify($3, '')", [@ns, @name, @channel])
        self
      end

      # Closes it for every process: pushes raise, pops drain what is left and then answer nil.
      # @return [self]
      def close
        query("UPDATE process_shared_objects SET broken = true WHERE namespace = $1 AND name = $2", [@ns, @name])
        query("SELECT pg_notify($1, '')", [@channel])
        self
      end

      def closed? = value_of("SELECT broken FROM process_shared_objects WHERE namespace = $1 AND name = $2")

      # @return [Integer] owners waiting (to push or pop), whose sessions are alive
      def num_waiting = live_waiters

      private

      # Without +max+, one statement: the element goes in unless the queue is closed (a push racing a close
      # is ordered before it). With +max+, process_shared_push orders the pushes to check the size exactly.
      UNBOUNDED_PUSH = <<~SQL
        WITH o AS (SELECT broken FROM process_shared_objects WHERE namespace = $1 AND name = $2),
             i AS (INSERT INTO process_shared_items (namespace, name, payload)
                     SELECT $1, $2, $3 FROM o WHERE NOT o.broken RETURNING 1)
        SELECT CASE WHEN EXISTS (SELECT 1 FROM i) THEN (SELECT 1 FROM (SELECT pg_notify($4, '')) n) ELSE -1 END
      SQL

      def offer(item)
        n = if @max
              value_of("SELECT process_shared_push($1, $2, $3, $4, $5)", item, @max, @channel)
            else
              value_of(UNBOUNDED_PUSH, item, @channel)
            end
        raise ClosedQueueError, "queue closed" if n == -1

        n != -2
      end

      # [obj] for the element taken, [nil] if closed and empty, nil if empty. An interrupt that came as
      # the element was taken puts it back where it was (its id keeps its place).
      def take(session)
        row = session.call(<<~SQL, [@ns, @name, @channel]) { |late| put_back(session, late) }
          WITH d AS (DELETE FROM process_shared_items WHERE id = (
                       SELECT id FROM process_shared_items WHERE namespace = $1 AND name = $2
                        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING id, payload)
          SELECT id, payload, pg_notify($3, '') FROM d
        SQL
        return closed_or_empty(session) if row.ntuples.zero?

        load(session, row)
      end

      def take_in_transaction(session)
        conn = session.conn
        session.call("BEGIN")
        done = false
        begin
          row = session.call(<<~SQL, [@ns, @name])
            SELECT id, payload FROM process_shared_items WHERE namespace = $1 AND name = $2
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
          SQL
          if row.ntuples.zero?
            session.call("ROLLBACK")
            done = true
            return closed_or_empty(session)
          end
          result = yield(Marshal.load(row.getvalue(0, 1))) # rubocop:disable Security/MarshalLoad -- our own dumps
          session.call("DELETE FROM process_shared_items WHERE id = $1", [row.getvalue(0, 0)])
          session.call("SELECT pg_notify($1, '')", [@channel])
          session.call("COMMIT")
          done = true
          [result]
        ensure
          unless done
            Thread.handle_interrupt(Object => :never) do
              session.call("ROLLBACK") if conn.transaction_status != PG::PQTRANS_IDLE
            rescue ConnectionError, PG::Error
              nil # the server rolls back a transaction whose session ended
            end
          end
        end
      end

      def closed_or_empty(session)
        closed = session.call("SELECT broken FROM process_shared_objects WHERE namespace = $1 AND name = $2",
                              [@ns, @name]).getvalue(0, 0)
        closed ? [nil] : nil
      end

      def load(session, row)
        [Marshal.load(row.getvalue(0, 1))] # rubocop:disable Security/MarshalLoad -- our own dumps
      rescue Exception # rubocop:disable Lint/RescueException -- the element is not lost: it goes back
        put_back(session, row)
        raise
      end

      def put_back(session, row)
        return if row.nil? || row.ntuples.zero?

        session.call("INSERT INTO process_shared_items (id, namespace, name, payload) VALUES ($1, $2, $3, $4)",
                     [row.getvalue(0, 0), @ns, @name, { value: row.getvalue(0, 1), format: 1 }])
      end
    end
  end
end
