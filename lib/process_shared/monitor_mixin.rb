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
    def self.extend_object(obj)
      super
      obj.__send__(:mon_initialize)
    end

    def initialize(...)
      super
      mon_initialize
    end

    def mon_enter
      @mon_data.enter
    end

    def mon_exit
      @mon_data.exit
    end

    def mon_try_enter(timeout = nil)
      @mon_data.try_enter(timeout)
    end
    alias try_mon_enter mon_try_enter

    # (+on_owner_dead:+ as {Monitor#synchronize})
    def mon_synchronize(**kwargs, &block)
      @mon_data.synchronize(**kwargs, &block)
    end
    alias synchronize mon_synchronize

    def mon_locked?
      @mon_data.mon_locked?
    end

    def mon_owned?
      @mon_data.mon_owned?
    end

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
