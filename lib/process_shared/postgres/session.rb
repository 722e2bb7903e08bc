# frozen_string_literal: true

module ProcessShared
  class Postgres
    # @!visibility private
    # One database session (a connection) used by one owner: its id (what the lock rows name as holder), the
    # channels it LISTENs on, and the one way every call is made, so that each call is interruptible and a
    # lost connection is noticed once, in one place.
    class Session
      # What the server or libpq says when the session itself is gone.
      GONE = [PG::ConnectionBad, PG::UnableToSend, PG::AdminShutdown, PG::CrashShutdown,
              PG::CannotConnectNow].freeze

      attr_reader :conn, :id, :pid

      # Locks this session holds: key => fencing token. Holds of a lost session the owner has not yet been
      # told of move to the owner's next session as +lost_holds+.
      attr_reader :holds, :lost_holds

      # Read locks this session holds: key => how many.
      attr_reader :shares

      def initialize(conn)
        @conn = conn
        @id = SecureRandom.hex(12)
        @pid = Process.pid
        @listening = {}
        @lost = false
        @holds = {}
        @lost_holds = {}
        @shares = Hash.new(0)
        # Applied to our results only: a connection given by the user keeps its own settings.
        @types = PG::BasicTypeMapForResults.new(conn)
        # A session's own channel: condition-variable signals name it.
        listen("ps_s_#{@id}")
      end

      def usable? = !@lost && @pid == Process.pid && !conn.finished?

      # Closes the connection (not one inherited over fork: that would end the parent's session).
      def finish
        conn.finish unless conn.finished? || @pid != Process.pid
      end

      # Runs one statement. On an interrupt (Thread#raise, Thread#kill, Timeout, Ctrl-C) while the server
      # works, cancels the statement, waits for its end, and calls the block with the finished result (nil if
      # the cancel stopped it), which undoes what the statement did; then lets the interrupt go on. A lost
      # connection marks the session lost and raises {ConnectionError}; a statement error raises the
      # +PG::Error+.
      def call(sql, params = [])
        Thread.handle_interrupt(Object => :never) do
          send_statement(sql, params)
          result = nil
          answered = false
          begin
            Thread.handle_interrupt(Object => :immediate) { result = conn.get_last_result }
            answered = true
          rescue PG::Error => e
            answered = true
            gone!(e)
          ensure
            # Interrupted (by an exception, or by Timeout's throw, which no rescue sees): cancel, undo.
            unless answered
              late = cancel
              yield late if block_given? && !@lost
            end
          end
          result.check
          result.map_types!(@types)
        rescue PG::Error => e
          gone!(e)
        end
      end

      # Subscribes this session to a channel (once).
      def listen(channel)
        return if @listening[channel]

        call("LISTEN #{conn.quote_ident(channel)}")
        @listening[channel] = true
      end

      # Waits (interruptibly, the GVL released) for a notification on any channel this session LISTENs on,
      # at most +seconds+ (nil: forever). Returns [channel, payload], or nil on timeout.
      def wait_for_notify(seconds)
        got = nil
        conn.wait_for_notify(seconds) { |channel, _pid, payload| got = [channel, payload] }
        raise ConnectionError, "the connection to PostgreSQL was lost while waiting" if got.nil? && conn_dead?

        got
      rescue PG::Error => e
        gone!(e)
      end

      private

      def send_statement(sql, params)
        conn.send_query_params(sql, params)
      rescue PG::Error => e
        gone!(e)
      end

      # The cancel of an interrupted statement: the statement's result if it finished anyway, else nil.
      def cancel
        conn.cancel
        result = nil
        while (r = conn.get_result)
          result = r.map_types!(@types) if [PG::PGRES_TUPLES_OK, PG::PGRES_COMMAND_OK].include?(r.result_status)
        end
        result
      rescue PG::Error
        @lost = true
        nil
      end

      def conn_dead?
        conn.consume_input
        false
      rescue PG::Error
        true
      end

      def gone!(error)
        raise error unless GONE.any? { |k| error.is_a?(k) } || conn.status != PG::CONNECTION_OK

        @lost = true
        raise ConnectionError, "the connection to PostgreSQL was lost: #{error.message.strip}"
      end
    end
  end
end
