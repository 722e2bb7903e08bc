# frozen_string_literal: true

module ProcessShared
  # +size+ independent signed 64-bit counters in shared memory, each on a 64-byte cache line of its own (the
  # raindrops layout), so processes updating different counters never slow each other down. Lock-free and
  # wrapping like {AtomicInteger}. Indexes count from 0; a negative index counts from the end, as for
  # +Array+; one outside raises +IndexError+.
  #
  #   stats = ProcessShared::Counters.new(2)   # [requests, errors]
  #   workers = 4.times.map { fork { 100.times { stats.incr(0) } } }
  #   Process.waitall
  #   stats.to_a # => [400, 0]
  #
  # Native methods: +incr(index, delta = 1)+ and +decr(index, delta = 1)+ (return the new value),
  # <tt>[](index)</tt>, <tt>[]=(index, value)</tt>, +to_a+, +size+, +close+, +closed?+, +inspect+.
  class Counters
    extend Openable
    include CappedEnumerable

    # @!method initialize(size)
    #   +size+ new counters, all 0 (+name:+, +mode:+, +create:+ as in {Named}; an opener's +size+ must match).
    #   @param size [Integer] 0..2**24
    #   @raise [TypeError] if +size+ is not an Integer
    #   @raise [ArgumentError] if it is out of range

    # @!method incr(index, delta = 1)
    #   Adds +delta+ to counter +index+, wrapping like +int64_t+.
    #   @param index [Integer] negative counts from the end
    #   @param delta [Integer] in int64
    #   @return [Integer] the new value
    #   @raise [IndexError] if +index+ is out of range
    #   @raise [TypeError] if an argument is not an Integer
    #   @raise [RangeError] if +delta+ does not fit int64
    #   @raise [ClosedError] if closed

    # @!method decr(index, delta = 1)
    #   Subtracts +delta+ from counter +index+, wrapping like +int64_t+.
    #   @param index [Integer] negative counts from the end
    #   @param delta [Integer] in int64
    #   @return [Integer] the new value
    #   @raise [IndexError] if +index+ is out of range
    #   @raise [TypeError] if an argument is not an Integer
    #   @raise [RangeError] if +delta+ does not fit int64
    #   @raise [ClosedError] if closed

    # @!method [](index)
    #   @param index [Integer] negative counts from the end
    #   @return [Integer] counter +index+'s value
    #   @raise [IndexError] if +index+ is out of range
    #   @raise [TypeError] if it is not an Integer
    #   @raise [ClosedError] if closed

    # @!method []=(index, value)
    #   Sets counter +index+.
    #   @param index [Integer] negative counts from the end
    #   @param value [Integer] in int64
    #   @return [Integer] +value+
    #   @raise [IndexError] if +index+ is out of range
    #   @raise [TypeError] if an argument is not an Integer
    #   @raise [RangeError] if +value+ does not fit int64
    #   @raise [ClosedError] if closed

    # @!method to_a
    #   @return [Array<Integer>] every counter's value, in one pass
    #   @raise [ClosedError] if closed

    # @!method size
    #   @return [Integer] the number of counters (also +length+; works when closed)

    # @!method close
    #   Releases this process's handle (idempotent); other processes keep the counters. Later calls, except
    #   {#closed?} and {#inspect}, raise {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The useful state (size and the first 10 values), read without blocking.
    #   @return [String]

    # Yields each counter's value (read one at a time; use {#to_a} for one pass over all of them).
    # @return [self, Enumerator]
    def each(&block)
      return enum_for(:each) { size } unless block

      to_a.each(&block)
      self
    end

    # The counters as a Hash, read in one pass (as {#to_a}): index => value, or, given one label per
    # counter, label => value (for an exporter: <tt>stats.to_h(%w[requests errors])</tt>). With a block,
    # +Enumerable#to_h+ over the values.
    # @param labels [Array, nil] one key per counter
    # @return [Hash]
    # @raise [ArgumentError] if +labels+ does not have one key per counter
    def to_h(labels = nil, &block)
      return super(&block) if block

      values = to_a
      return values.each_with_index.to_h { |v, i| [i, v] } if labels.nil?
      raise ArgumentError, "#{labels.size} labels for #{values.size} counters" unless labels.size == values.size

      labels.zip(values).to_h
    end

    alias length size
  end
end
