# frozen_string_literal: true

module ProcessShared
  # A condition variable in shared memory, used with a {Mutex} or a {Monitor}.
  #
  # Native methods: +signal+ (wakes one waiter), +broadcast+ (wakes all), +waiters+, +close+, +closed?+,
  # +inspect+. A signal with no waiter is not remembered.
  class ConditionVariable
    extend Openable

    # @!method initialize
    #   A new condition variable with no waiter (+name:+, +mode:+, +create:+ as in {Named}).
    #   @raise [ArgumentError] if given any argument

    # @!method signal
    #   Wakes one waiter, if any (a signal with no waiter is not remembered).
    #   @return [self]
    #   @raise [ClosedError] if closed

    # @!method broadcast
    #   Wakes every waiter.
    #   @return [self]
    #   @raise [ClosedError] if closed

    # @!method waiters
    #   @return [Integer] how many threads (of all processes) wait on it now
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the condition variable. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (waiters), read without blocking.
    #   @return [String]

    # Release +lock+ (a {Mutex} held by this thread, or a {Monitor} it entered, however many times), wait
    # for a signal or +timeout+ seconds, and take +lock+ back. The lock is held again on return, whatever
    # happened: also when an interrupt (Thread#raise, #kill, Timeout, Ctrl-C) ends the wait, which is raised
    # only once the lock is held again.
    # @param lock [Mutex, Monitor]
    # @param timeout [Numeric, nil] seconds (nil: forever)
    # @return [Boolean] true when woken, false when the timeout expired
    # @raise [TypeError] if +lock+ is neither a {Mutex} nor a {Monitor}
    # @raise [ArgumentError] for a negative or non-numeric timeout
    # @raise [ProcessError] if the calling thread does not hold +lock+
    # @raise [OwnerDeadError] (holding the lock) if its owner died while we waited
    def wait(lock, timeout = nil)
      count = _begin(lock, timeout) # checks only
      woken = false
      Thread.handle_interrupt(Object => :never) do
        woken = Thread.handle_interrupt(Object => :immediate) { _sleep(lock, timeout) }
      ensure
        _finish(lock, count) # re-takes the lock if _sleep released it
        # An interrupt that came after the wake-up was taken (while the lock was being re-taken) is raised
        # from here instead of true being returned: pass the wake-up on, as _sleep does when an interrupt
        # ends the sleep itself.
        pass_on if woken && Thread.pending_interrupt?
      end
    end

    private

    def pass_on
      signal
    rescue ClosedError
      nil # closed meanwhile: nobody can wait on it any more
    end
  end
end
