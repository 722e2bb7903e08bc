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

    # @!method initialize(initial = 0)
    #   A new atomic integer (+name:+, +mode:+, +create:+ as in {Named}; +initial+ applies to a new object only).
    #   @param initial [Integer] in int64
    #   @raise [TypeError] if +initial+ is not an Integer
    #   @raise [RangeError] if it does not fit int64

    # @!method value
    #   @return [Integer] the current value (also +get+, {#to_i})
    #   @raise [ClosedError] if closed

    # @!method value=(new_value)
    #   Sets the value (also +set+).
    #   @param new_value [Integer] in int64
    #   @return [Integer] +new_value+
    #   @raise [TypeError] if it is not an Integer
    #   @raise [RangeError] if it does not fit int64
    #   @raise [ClosedError] if closed

    # @!method increment(delta = 1)
    #   Adds +delta+, wrapping like +int64_t+ (also +up+).
    #   @param delta [Integer] in int64
    #   @return [Integer] the new value
    #   @raise [TypeError] if +delta+ is not an Integer
    #   @raise [RangeError] if it does not fit int64
    #   @raise [ClosedError] if closed

    # @!method decrement(delta = 1)
    #   Subtracts +delta+, wrapping like +int64_t+ (also +down+).
    #   @param delta [Integer] in int64
    #   @return [Integer] the new value
    #   @raise [TypeError] if +delta+ is not an Integer
    #   @raise [RangeError] if it does not fit int64
    #   @raise [ClosedError] if closed

    # @!method compare_and_set(expected, new_value)
    #   Sets +new_value+ if the value is +expected+, in one atomic step.
    #   @param expected [Integer] in int64
    #   @param new_value [Integer] in int64
    #   @return [Boolean] whether it was +expected+ (and is now +new_value+)
    #   @raise [TypeError] if an argument is not an Integer
    #   @raise [RangeError] if one does not fit int64
    #   @raise [ClosedError] if closed

    # @!method get_and_set(new_value)
    #   Sets +new_value+ and returns the value it replaced, in one atomic step.
    #   @param new_value [Integer] in int64
    #   @return [Integer] the old value
    #   @raise [TypeError] if it is not an Integer
    #   @raise [RangeError] if it does not fit int64
    #   @raise [ClosedError] if closed

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the integer. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (value), read without blocking.
    #   @return [String]

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
