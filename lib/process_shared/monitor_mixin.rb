# frozen_string_literal: true

module ProcessShared
  # Gives any object a process-shared monitor, like stdlib's MonitorMixin:
  #
  #   buf = []
  #   buf.extend(ProcessShared::MonitorMixin)
  #   buf.synchronize { ... }
  #
  # or +include ProcessShared::MonitorMixin+ in a class (its +initialize+ must call +super+, or call
  # +mon_initialize+ itself).
  module MonitorMixin
    # +obj.extend(ProcessShared::MonitorMixin)+: gives +obj+ its own {ProcessShared::Monitor}.
    # @param obj [Object]
    # @return [Object] +obj+
    def self.extend_object(obj)
      super
      obj.__send__(:mon_initialize)
    end

    # For +include+: calls the class's +initialize+, then gives the new object its monitor.
    def initialize(...)
      super
      mon_initialize
    end

    # Enters the monitor ({ProcessShared::Monitor#enter}), waiting while another thread holds it.
    # @return [nil]
    # @raise [OwnerDeadError] (holding the monitor) if its owner died holding it
    def mon_enter
      @mon_data.enter
    end

    # Exits the monitor once ({ProcessShared::Monitor#exit}).
    # @return [nil]
    # @raise [ProcessError] if the calling thread does not hold it
    def mon_exit
      @mon_data.exit
    end

    # Enters the monitor if it is free, or becomes free within +timeout+ seconds.
    # @param timeout [Numeric, nil] seconds (nil or 0: do not wait)
    # @return [Boolean] whether it was entered
    # @raise [OwnerDeadError] (holding the monitor) if its owner died holding it
    def mon_try_enter(timeout = nil)
      @mon_data.try_enter(timeout)
    end
    alias try_mon_enter mon_try_enter

    # Runs the block holding the monitor ({ProcessShared::Monitor#synchronize}; +on_owner_dead:+ as there).
    # @param kwargs [Hash] +on_owner_dead:+ (a callable, or nil)
    # @return [Object] the block's value
    # @raise [OwnerDeadError] (the monitor released, the block not run) if its owner died holding it and no
    #   +on_owner_dead+ was given
    def mon_synchronize(**kwargs, &block)
      @mon_data.synchronize(**kwargs, &block)
    end
    alias synchronize mon_synchronize

    # @return [Boolean] whether any thread (of any process) holds the monitor
    def mon_locked?
      @mon_data.mon_locked?
    end

    # @return [Boolean] whether the calling thread holds the monitor
    def mon_owned?
      @mon_data.mon_owned?
    end

    # A condition variable bound to the monitor (in shared memory: create it before forking).
    # @return [ProcessShared::Monitor::ConditionVariable]
    def new_cond
      @mon_data.new_cond
    end

    private

    # Raises {ProcessError} (a +ThreadError+) unless the calling fiber holds the monitor. Private, as in
    # stdlib's MonitorMixin (+Monitor#mon_check_owner+ is public).
    def mon_check_owner
      @mon_data.mon_check_owner
    end

    def mon_initialize(*)
      @mon_data = ProcessShared::Monitor.new
    end
  end
end
