# frozen_string_literal: true

module ProcessShared
  # A cyclic barrier in shared memory: +parties+ processes (or threads) meet, then all go on together,
  # and the barrier is ready for the next round (concurrent-ruby's +CyclicBarrier+, without the action).
  #
  #   step = ProcessShared::Barrier.new(3)
  #   3.times { fork { 10.times { compute; step.wait } } }   # every round starts together
  #
  # <tt>Barrier.new(parties)</tt>, +parties+ in 1..65535. Native methods: +wait(timeout = nil)+ (true when
  # all parties arrived; false if the barrier is broken, or reset while waiting), +broken?+, +reset+ (a
  # new round, not broken; whoever waits now gets false), +parties+, +number_waiting+, +close+, +closed?+,
  # +inspect+. A +wait+ that times out breaks the barrier: everyone waiting, and everyone arriving until
  # +reset+, gets false. +wait+ releases the GVL and is interruptible: an interrupted wait withdraws its
  # arrival. A process killed while waiting stays counted, so that round completes one arrival early. A
  # waiter that gets to run only after more than 15 further rounds ended (resets, or more participants
  # than parties, while it was descheduled) reports true even if its own round was reset.
  class Barrier
    extend Openable

    # @!method initialize(parties)
    #   A new barrier for +parties+ participants (+name:+, +mode:+, +create:+ as in {Named}; an opener's
    #   +parties+ must match, else {Error}).
    #   @param parties [Integer] 1..65535
    #   @raise [TypeError] if +parties+ is not an Integer
    #   @raise [ArgumentError] if it is out of range

    # @!method wait(timeout = nil)
    #   Arrives, and waits for the other parties of this round.
    #   @param timeout [Numeric, nil] seconds (nil: forever); running out breaks the barrier
    #   @return [Boolean] true when all parties arrived; false if the barrier is broken, or reset, or the
    #     timeout passed
    #   @raise [ArgumentError] for a negative or non-numeric timeout
    #   @raise [ClosedError] if closed

    # @!method reset
    #   Starts a new round, not broken; whoever waits now gets false.
    #   @return [nil]
    #   @raise [ClosedError] if closed

    # @!method broken?
    #   @return [Boolean] whether a timed-out {#wait} broke it (until {#reset})
    #   @raise [ClosedError] if closed

    # @!method parties
    #   @return [Integer] the number of participants per round
    #   @raise [ClosedError] if closed

    # @!method number_waiting
    #   @return [Integer] how many have arrived in the current round and wait
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the barrier. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (parties, waiting, broken), read without blocking.
    #   @return [String]
  end
end
