# frozen_string_literal: true

module ProcessShared
  # A re-entrant lock in shared memory: the owning thread may enter it again. Stdlib names plus the original
  # gem's +lock+/+unlock+.
  #
  #   mon = ProcessShared::Monitor.new
  #   cond = mon.new_cond            # create before forking
  #   mon.synchronize { cond.wait_until { ready? } }
  #
  # Native methods: +enter+, +exit+, +try_enter(timeout = nil)+, +synchronize(on_owner_dead: nil)+ (below),
  # +mon_locked?+, +mon_owned?+, +mon_count+, +owner_pid+, +close+, +closed?+, +inspect+.
  class Monitor
    extend Openable

    # @!method synchronize(on_owner_dead: nil)
    #   Enters, runs the block, exits (also when the block raises), and answers the block's value. After a
    #   take-over from an owner that died holding the monitor, +on_owner_dead+ works as for
    #   {Mutex#synchronize}: called with the {OwnerDeadError} while the monitor is held (the
    #   +pthread_mutex_consistent+ idea: repair, then go on), then the block runs; without it the monitor is
    #   exited and {OwnerDeadError} raised without running the block.
    #   @param on_owner_dead [#call, nil] called with the {OwnerDeadError}, holding the monitor
    #   @return [Object] the block's value
    #   @raise [LocalJumpError] without a block, as +::Monitor#synchronize+
    #   @raise [TypeError] if +on_owner_dead+ does not respond to +call+

    alias mon_enter enter
    alias lock enter
    alias mon_exit exit
    alias unlock exit
    alias mon_try_enter try_enter
    alias try_mon_enter try_enter
    alias mon_synchronize synchronize

    # Raises {ProcessError} unless the calling thread holds the monitor.
    def mon_check_owner
      raise ProcessError, "current thread does not own this monitor" unless mon_owned?
    end

    # A condition variable bound to this monitor (in shared memory: create it before forking).
    # @return [Monitor::ConditionVariable]
    def new_cond
      raise ClosedError, "ProcessShared::Monitor is closed" if closed?

      ConditionVariable.new(self)
    end

    # Wait on +cond+ (a {ProcessShared::ConditionVariable} or one of this monitor's {#new_cond}) with the
    # monitor released completely. @return [Boolean] false if the timeout expired
    def wait_for_cond(cond, timeout = nil)
      raise ClosedError, "ProcessShared::Monitor is closed" if closed?

      case cond
      when ProcessShared::ConditionVariable then cond.wait(self, timeout)
      when Monitor::ConditionVariable
        unless cond.instance_variable_get(:@monitor).equal?(self)
          raise ArgumentError, "that condition belongs to another monitor"
        end

        cond.wait(timeout)
      else raise TypeError, "expected a ProcessShared condition variable, got #{cond.class}"
      end
    end

    # The condition returned by {Monitor#new_cond}: stdlib's MonitorMixin::ConditionVariable interface.
    class ConditionVariable
      def initialize(monitor)
        @monitor = monitor
        @cond = ProcessShared::ConditionVariable.new
      end

      # Release the monitor, wait for a signal (or +timeout+ seconds), re-enter.
      # @return [Boolean] true when signalled, false on timeout
      def wait(timeout = nil)
        @cond.wait(@monitor, timeout)
      end

      def wait_while
        wait while yield
      end

      def wait_until
        wait until yield
      end

      def signal
        @monitor.mon_check_owner
        @cond.signal
      end

      def broadcast
        @monitor.mon_check_owner
        @cond.broadcast
      end

      def close
        @cond.close
      end

      def closed?
        @cond.closed?
      end
    end
  end
end
