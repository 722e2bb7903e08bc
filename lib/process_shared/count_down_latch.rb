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
  end
end
