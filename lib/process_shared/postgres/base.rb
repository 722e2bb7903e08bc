# frozen_string_literal: true

module ProcessShared
  class Postgres
    # @!visibility private
    # What every PostgreSQL-backed object shares: its row, its channel, timeouts, and the one wait loop.
    class Base
      # @return [String] the object's name in its cluster's namespace
      attr_reader :name

      # @return [Postgres] the cluster it belongs to
      attr_reader :cluster

      def initialize(cluster, name, kind, params = "", value: 0, cells: 0)
        cluster.check_name(name)
        @cluster = cluster
        @ns = cluster.namespace
        @name = name.dup.freeze
        @key = cluster.key(name)
        @channel = "ps_#{[@key].pack("q>").unpack1("H*")}"
        row = query("SELECT * FROM process_shared_open($1, $2, $3, $4, $5, $6, $7)",
                    [@ns, @name, kind, params, @key, value, cells])[0]
        return if row && row["kind"] == kind && row["params"] == params

        raise IncompatibleError, "#{@ns}/#{@name} is a #{row&.fetch("kind")}(#{row&.fetch("params")}), " \
                                 "not a #{kind}(#{params})"
      end

      # @return [String] the class, namespace and name
      def inspect
        "#<#{self.class} #{@ns}/#{@name}>"
      end

      private

      def query(sql, params = [], &block) = @cluster.query(sql, params, &block)

      # A statement on this object's row ($1, $2 are its namespace and name): its single value.
      def value_of(sql, *params, &block) = query(sql, [@ns, @name, *params], &block).values.dig(0, 0)

      def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

      # nil for nil (forever); the monotonic deadline of a timeout in seconds otherwise.
      def deadline(timeout)
        return nil if timeout.nil?

        now + seconds(timeout)
      end

      def seconds(timeout)
        raise ArgumentError, "timeout must be a non-negative number of seconds, got #{timeout.inspect}" unless
          timeout.is_a?(Numeric) && !timeout.is_a?(Complex) && timeout >= 0

        timeout.to_f
      end

      # Milliseconds for +lock_timeout+ (at least 1 for a positive timeout; 0 means "do not wait").
      def milliseconds(timeout)
        s = seconds(timeout)
        s.zero? ? 0 : [(s * 1000).ceil, 2**31 - 1].min
      end

      # Calls the block (with the session) until it answers non-nil, waiting between tries for a NOTIFY
      # on +channel+, at most until +deadline+; nil if it passed. The session LISTENs before the first try,
      # so a wake-up sent after a try is not lost. +waiter+ records the session as waiting meanwhile
      # (+num_waiting+).
      def wait_for(deadline, channel: @channel, waiter: false)
        s = @cluster.session
        s.listen(channel)
        id = nil
        begin
          while true # rubocop:disable Style/InfiniteLoop -- Kernel#loop swallows ClosedQueueError (a StopIteration)
            r = yield(s)
            return r unless r.nil?

            remaining = deadline && (deadline - now)
            return nil if remaining && remaining <= 0

            id ||= waiter && value_of("INSERT INTO process_shared_waiters (namespace, name, session) " \
                                      "VALUES ($1, $2, $3) RETURNING id", s.id)
            s.wait_for_notify(remaining)
          end
        ensure
          Thread.handle_interrupt(Object => :never) { forget_waiter(id) } if id
        end
      end

      def forget_waiter(id)
        query("DELETE FROM process_shared_waiters WHERE id = $1", [id])
      rescue ConnectionError
        nil # the row names a session that is gone: skipped and not counted
      end

      def live_waiters
        value_of(<<~SQL).to_i
          SELECT count(*) FROM process_shared_waiters w
           WHERE w.namespace = $1 AND w.name = $2
             AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.pid AND a.backend_start = w.started)
        SQL
      end

      # Adds +delta+ to the value of the row ($1, $2 and +where+ select it) as C's int64_t does: a bigint
      # addition, and where that overflows (rarely), the same in numeric, wrapped.
      def add(table, where, delta, *more)
        value_of("UPDATE #{table} SET value = value + $3 WHERE namespace = $1 AND name = $2#{where} RETURNING value",
                 delta, *more)
      rescue PG::NumericValueOutOfRange
        value_of("UPDATE #{table} SET value = process_shared_wrap(value::numeric + $3) " \
                 "WHERE namespace = $1 AND name = $2#{where} RETURNING value", delta, *more)
      end

      # -v in int64_t (-(-2**63) is -2**63).
      def negated(v) = v == -2**63 ? v : -v

      # +v+ if it is an Integer in +range+ (TypeError, ArgumentError otherwise).
      def integer_in(v, what, range)
        raise TypeError, "#{what} must be an Integer, got #{v.class}" unless v.is_a?(Integer)
        raise ArgumentError, "#{what} must be #{range}, got #{v}" unless range.cover?(v)

        v
      end

      def int64(v, what = "value")
        raise TypeError, "#{what} must be an Integer, got #{v.class}" unless v.is_a?(Integer)
        raise RangeError, "#{what} #{v} is outside int64" unless v.between?(-2**63, 2**63 - 1)

        v
      end
    end
  end
end
