# frozen_string_literal: true

module ProcessShared
  # A counting semaphore in shared memory.
  #
  #   sem = ProcessShared::Semaphore.new(2)
  #   sem.synchronize { ... }   # at most two processes inside at once
  #
  # Permits of the dead come back: a permit taken by {#synchronize} (or by +wait(undo: true)+ /
  # +try_wait(undo: true)+) is held by the calling process until it posts; if the process dies first, the
  # permit is given back within about a second ({#take_reclaimed} counts such permits). A plain +wait+
  # consumes a permit (a consumer of permits that other processes +post+); a +post+ gives back one of the
  # poster's own undoable holds if it has any, else it adds a permit that nobody holds.
  #
  # Native methods: +post+, +synchronize+, +value+, +waiters+, +take_reclaimed+, +close+, +closed?+,
  # +inspect+.
  class Semaphore
    extend Openable

    # @!method initialize(value = 1)
    #   A new semaphore (+name:+, +mode:+, +create:+ as in {Named}; the value applies to a new object only).
    #   @param value [Integer] the initial value, 0..2**31-1 ({BinarySemaphore}: 0 or 1)
    #   @raise [TypeError] if +value+ is not an Integer
    #   @raise [ArgumentError] if it is out of range

    # @!method post
    #   Gives back one of this process's undoable holds if it has any, else adds a permit that nobody holds;
    #   wakes a waiter.
    #   @return [nil]
    #   @raise [ProcessError] for a {BinarySemaphore} whose value is already 1 (it stays 1)
    #   @raise [Errno::EOVERFLOW] if the value would exceed 2**31-1
    #   @raise [ClosedError] if closed

    # @!method synchronize
    #   Runs the block holding a permit (as <tt>wait(undo: true)</tt>, so it comes back if the process dies)
    #   and posts it after, however the block ends.
    #   @yield holding a permit
    #   @return [Object] the block's value
    #   @raise [ThreadError] without a block
    #   @raise [ClosedError] if closed

    # @!method value
    #   @return [Integer] the current value (a snapshot)
    #   @raise [ClosedError] if closed

    # @!method waiters
    #   @return [Integer] how many threads of live processes may be waiting (a hint)
    #   @raise [ClosedError] if closed

    # @!method take_reclaimed
    #   How many permits came back from dead processes since the last call (by any process): the way to learn
    #   that a holder died.
    #   @return [Integer]
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the semaphore. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (value, permits held, waiters), read without blocking.
    #   @return [String]

    # Take a permit, waiting for one.
    # @param undo [Boolean] hold it for this process until it posts (given back if the process dies)
    # @return [nil]
    # @raise [ClosedError] if closed
    def wait(undo: false)
      _wait(undo)
    end

    # Take a permit without waiting (no timeout) or waiting at most +timeout+ seconds.
    # @param timeout [Numeric, nil] seconds; 0 does not wait
    # @param undo [Boolean] as for {#wait}
    # @return [nil]
    # @raise [Errno::EAGAIN] without a timeout, when the value is 0
    # @raise [Errno::ETIMEDOUT] when the timeout expires
    # @raise [ArgumentError] for a negative or non-numeric timeout
    # @raise [ClosedError] if closed
    def try_wait(timeout = nil, undo: false)
      _try_wait(timeout, undo)
    end

    # An unchecked mutex facade over this semaphore: +lock+ waits, +unlock+ posts, no owner is recorded.
    # @return [SemaphoreMutex]
    def to_mtx
      SemaphoreMutex.new(self)
    end
  end

  # A semaphore whose value is 0 or 1; posting it at 1 raises {ProcessError} and leaves it at 1.
  # @!parse
  #   class BinarySemaphore < Semaphore
  #     # A new binary semaphore (+name:+, +mode:+, +create:+ as in {Named}; the value applies to a new object
  #     # only). (Native; in a +@!parse+ directive because YARD drops a directive in an empty class body.)
  #     # @param value [Integer] 0 or 1
  #     # @raise [TypeError] if +value+ is not an Integer
  #     # @raise [ArgumentError] if it is neither 0 nor 1
  #     def initialize(value = 1); end
  #   end
  class BinarySemaphore < Semaphore
  end

  # The mutex facade returned by {Semaphore#to_mtx}.
  class SemaphoreMutex
    include Sleep

    # @param semaphore [Semaphore] the semaphore to lock and unlock (see {Semaphore#to_mtx})
    def initialize(semaphore)
      @semaphore = semaphore
    end

    # Takes a permit, waiting for one (held for this process, as by <tt>wait(undo: true)</tt>).
    # @return [self]
    def lock
      @semaphore.wait(undo: true)
      self
    end

    # Posts the permit back. Unchecked: any thread or process may unlock.
    # @return [self]
    def unlock
      @semaphore.post
      self
    end

    # @return [Boolean] whether the lock was taken (never blocks)
    def try_lock
      @semaphore.try_wait(undo: true)
      true
    rescue Errno::EAGAIN
      false
    end

    # Whether the lock is held (by anyone); does not acquire it.
    # @return [Boolean] true when the semaphore's value is 0
    def locked?
      @semaphore.value.zero?
    end

    # Runs the block between {#lock} and {#unlock}.
    # @return [Object] the block's value
    def synchronize
      lock
      begin
        yield
      ensure
        unlock
      end
    end

    # Closes the semaphore in this process ({Semaphore#close}).
    # @return [nil]
    def close
      @semaphore.close
    end

    # @return [Boolean] whether the semaphore is closed in this process
    def closed?
      @semaphore.closed?
    end
  end
end
