# frozen_string_literal: true

module ProcessShared
  # A count in shared memory that waiters see reach zero (concurrent-ruby's +CountDownLatch+).
  #
  #   done = ProcessShared::CountDownLatch.new(4)
  #   4.times { fork { work; done.count_down } }
  #   done.wait(60)      # => true once all four counted down
  #
  # <tt>CountDownLatch.new(count = 1)</tt>, +count+ in 0..2**31-1. Native methods: +count_down+ (never below
  # 0; reaching 0 releases every waiter), +count+, +wait(timeout = nil)+ (true once the count is 0, false
  # if the timeout passed first), +close+, +closed?+, +inspect+. +wait+ releases the GVL and is
  # interruptible.
  class CountDownLatch
    extend Openable

    # @!method initialize(count = 1)
    #   A new latch (+name:+, +mode:+, +create:+ as in {Named}; +count+ applies to a new object only).
    #   @param count [Integer] 0..2**31-1
    #   @raise [TypeError] if +count+ is not an Integer
    #   @raise [ArgumentError] if it is out of range

    # @!method count_down
    #   Decrements the count (never below 0); reaching 0 releases every waiter.
    #   @return [nil]
    #   @raise [ClosedError] if closed

    # @!method count
    #   @return [Integer] the current count
    #   @raise [ClosedError] if closed

    # @!method wait(timeout = nil)
    #   Waits until the count is 0 (returns at once if it is).
    #   @param timeout [Numeric, nil] seconds (nil: forever)
    #   @return [Boolean] true once the count is 0, false if the timeout passed first
    #   @raise [ArgumentError] for a negative or non-numeric timeout
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the latch. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (count), read without blocking.
    #   @return [String]
  end
end
