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

    # Yields each counter's value (read one at a time; use {#to_a} for one pass over all of them).
    # @return [self, Enumerator]
    def each(&block)
      return enum_for(:each) { size } unless block

      to_a.each(&block)
      self
    end

    alias length size
  end
end
