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
  end
end
