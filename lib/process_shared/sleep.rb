# frozen_string_literal: true

module ProcessShared
  # +sleep+ for lock classes that have +lock+ and +unlock+ (Mutex, the Semaphore#to_mtx facade).
  module Sleep
    # Unlock, sleep (forever, or +timeout+ seconds, or until Thread#wakeup), then lock again (also when the
    # sleep is interrupted). Like Thread::Mutex#sleep, it returns or raises only holding the lock: an
    # interrupt (Thread#raise, #kill, Timeout) that arrives during the re-lock is delivered once it is held.
    # @return [Integer] seconds slept, like Kernel#sleep
    def sleep(timeout = nil)
      Sleep.check_timeout(timeout)
      unlock
      begin
        timeout ? Kernel.sleep(timeout) : Kernel.sleep
      ensure
        Thread.handle_interrupt(Object => :never) { _relock }
      end
    end

    # Timeouts are nil or non-negative real numbers (the native methods check their own).
    def self.check_timeout(timeout)
      valid = case timeout # Module#=== works even for a BasicObject
              when nil then true
              when Float then !timeout.nan? && timeout >= 0
              when Integer, Rational then timeout >= 0
              else false
              end
      return if valid

      shown = Kernel.instance_method(:inspect).bind_call(timeout) # BasicObject has no #inspect
      raise ArgumentError, "timeout must be nil or a non-negative number of seconds, got #{shown}"
    end

    private

    # Take the lock back after the sleep (Mutex overrides this natively with an uninterruptible re-lock).
    def _relock
      lock
    end
  end
end
