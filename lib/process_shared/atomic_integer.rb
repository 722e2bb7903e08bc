# frozen_string_literal: true

module ProcessShared
  # A signed 64-bit integer in shared memory, updated without locks: every operation is one atomic
  # instruction, so it never blocks, and a process killed at any moment leaves the value either before or
  # after its last operation. Arithmetic wraps like C's +int64_t+ (+2**63 - 1+ plus 1 is +-2**63+);
  # an argument outside that range raises +RangeError+, a non-Integer +TypeError+.
  #
  #   hits = ProcessShared::AtomicInteger.new
  #   4.times { fork { 1000.times { hits.increment } } }
  #   Process.waitall
  #   hits.value # => 4000
  #
  # Native methods: +value+, +value=+, +increment(delta = 1)+ and +decrement(delta = 1)+ (return the new
  # value), +compare_and_set(expected, new)+ (true if it was +expected+ and is now +new+),
  # +get_and_set(new)+ (returns the old value), +close+, +closed?+, +inspect+.
  class AtomicInteger
    extend Openable

    # Replaces the value with the block's result, retrying (with the newer value) if another thread or
    # process changed it meanwhile; the block may therefore run more than once. A block that raises, or
    # returns something that is not an Integer in range, changes nothing.
    # @yieldparam value [Integer] the current value
    # @return [Integer] the new value
    def update
      raise ArgumentError, "no block given" unless block_given?

      loop do
        old = value
        new = yield old
        return new if compare_and_set(old, new)
      end
    end

    alias get value
    alias set value=
    alias up increment
    alias down decrement

    # @return [Integer] the current value
    def to_i
      value
    end
  end
end
