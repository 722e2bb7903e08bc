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

    # @!method initialize
    #   A new monitor, not entered (+name:+, +mode:+, +create:+ as in {Named}).
    #   @raise [ArgumentError] if given any argument

    # @!method enter
    #   Enters the monitor for the calling thread (fiber): at once if it holds it already (counted), else
    #   waiting while another holds it. Also +mon_enter+ and +lock+.
    #   @return [nil]
    #   @raise [OwnerDeadError] holding the monitor (count 1), if its owner died holding it
    #   @raise [ProcessError] if entered too many times (2**32 - 1) by one thread
    #   @raise [ClosedError] if closed

    # @!method exit
    #   Exits once; the monitor is released when every {#enter} has been matched. Also +mon_exit+ and +unlock+.
    #   @return [nil]
    #   @raise [ProcessError] if the calling thread does not hold it
    #   @raise [ClosedError] if closed

    # @!method try_enter(timeout = nil)
    #   Enters if the monitor is free (or held by the calling thread), or becomes free within +timeout+
    #   seconds. Also +mon_try_enter+ and +try_mon_enter+.
    #   @param timeout [Numeric, nil] seconds (nil or 0: do not wait)
    #   @return [Boolean] whether it was entered
    #   @raise [ArgumentError] for a negative or non-numeric timeout
    #   @raise [OwnerDeadError] holding the monitor, if its owner died holding it
    #   @raise [ClosedError] if closed

    # @!method synchronize(on_owner_dead: nil)
    #   Enters, runs the block, exits (also when the block raises), and answers the block's value. After a
    #   take-over from an owner that died holding the monitor, +on_owner_dead+ works as for
    #   {Mutex#synchronize}: called with the {OwnerDeadError} while the monitor is held (the
    #   +pthread_mutex_consistent+ idea: repair, then go on), then the block runs; without it the monitor is
    #   exited and {OwnerDeadError} raised without running the block.
    #   @param on_owner_dead [#call, nil] called with the {OwnerDeadError}, holding the monitor
    #   @yield inside the monitor
    #   @return [Object] the block's value
    #   @raise [LocalJumpError] without a block, as +::Monitor#synchronize+
    #   @raise [OwnerDeadError] after a take-over, without +on_owner_dead+ (the monitor exited first)
    #   @raise [TypeError] if +on_owner_dead+ does not respond to +call+
    #   @raise [ClosedError] if closed

    # @!method mon_locked?
    #   @return [Boolean] whether any thread of any process holds it
    #   @raise [ClosedError] if closed

    # @!method mon_owned?
    #   @return [Boolean] whether the calling thread (fiber) of this process holds it
    #   @raise [ClosedError] if closed

    # @!method mon_count
    #   @return [Integer] how many times the calling thread has entered it (0 unless it holds it)
    #   @raise [ClosedError] if closed

    # @!method owner_pid
    #   @return [Integer, nil] pid of the process whose thread holds it; nil when free
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the monitor. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (owner pid, whether the caller owns it and how often, waiters), read without blocking.
    #   @return [String]

    alias mon_enter enter
    alias lock enter
    alias mon_exit exit
    alias unlock exit
    alias mon_try_enter try_enter
    alias try_mon_enter try_enter
    alias mon_synchronize synchronize

    # Raises {ProcessError} unless the calling thread holds the monitor.
    # @return [nil]
    # @raise [ProcessError] unless the calling thread holds the monitor
    def mon_check_owner
      raise ProcessError, "current thread does not own this monitor" unless mon_owned?
    end

    # A condition variable bound to this monitor (in shared memory: create it before forking).
    # @return [Monitor::ConditionVariable]
    # @raise [ClosedError] if the monitor is closed
    def new_cond
      raise ClosedError, "ProcessShared::Monitor is closed" if closed?

      ConditionVariable.new(self)
    end

    # Wait on +cond+ (a {ProcessShared::ConditionVariable} or one of this monitor's {#new_cond}) with the
    # monitor released completely.
    # @param cond [ProcessShared::ConditionVariable, Monitor::ConditionVariable]
    # @param timeout [Numeric, nil] seconds (nil: forever)
    # @return [Boolean] true when signalled, false if the timeout expired
    # @raise [ArgumentError] if +cond+ belongs to another monitor
    # @raise [TypeError] if +cond+ is not a condition variable of this gem
    # @raise [ClosedError] if the monitor is closed
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
      # @param monitor [Monitor] the monitor this condition belongs to; the condition itself is a new
      #   {ProcessShared::ConditionVariable} in shared memory
      def initialize(monitor)
        @monitor = monitor
        @cond = ProcessShared::ConditionVariable.new
      end

      # Release the monitor, wait for a signal (or +timeout+ seconds), re-enter.
      # @return [Boolean] true when signalled, false on timeout
      def wait(timeout = nil)
        @cond.wait(@monitor, timeout)
      end

      # Waits ({#wait}, without a timeout) as long as the block returns true.
      # @yieldreturn [Boolean] whether to wait (again)
      # @return [nil]
      # @raise [ProcessError] if the calling thread has not entered the monitor
      def wait_while
        wait while yield
      end

      # Waits ({#wait}, without a timeout) until the block returns true.
      # @yieldreturn [Boolean] whether the wait is over
      # @return [nil]
      # @raise [ProcessError] if the calling thread has not entered the monitor
      def wait_until
        wait until yield
      end

      # Wakes one waiter (a signal with none is not remembered).
      # @return [ProcessShared::ConditionVariable] the underlying shared condition variable
      # @raise [ProcessError] if the calling thread has not entered the monitor
      def signal
        @monitor.mon_check_owner
        @cond.signal
      end

      # Wakes every waiter.
      # @return [ProcessShared::ConditionVariable] the underlying shared condition variable
      # @raise [ProcessError] if the calling thread has not entered the monitor
      def broadcast
        @monitor.mon_check_owner
        @cond.broadcast
      end

      # Closes the underlying shared condition variable in this process (idempotent).
      # @return [nil]
      def close
        @cond.close
      end

      # @return [Boolean] whether {#close} was called
      def closed?
        @cond.closed?
      end
    end
  end
end
