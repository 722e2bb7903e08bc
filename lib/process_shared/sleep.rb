# frozen_string_literal: true

module ProcessShared
  # +sleep+ for lock classes that have +lock+ and +unlock+ (Mutex, the Semaphore#to_mtx facade).
  module Sleep
    # Unlock, sleep (forever, or +timeout+ seconds, or until Thread#wakeup), then lock again (also when the
    # sleep is interrupted).
    # @return [Integer] seconds slept, like Kernel#sleep
    def sleep(timeout = nil)
      Sleep.check_timeout(timeout)
      unlock
      begin
        timeout ? Kernel.sleep(timeout) : Kernel.sleep
      ensure
        lock
      end
    end

    # Timeouts are nil or non-negative real numbers (the native methods check their own).
    def self.check_timeout(timeout)
      return if timeout.nil?
      return if timeout.is_a?(Numeric) && timeout.real? && !(timeout.respond_to?(:nan?) && timeout.nan?) && timeout >= 0

      raise ArgumentError, "timeout must be nil or a non-negative number of seconds, got #{timeout.inspect}"
    end
  end
end
