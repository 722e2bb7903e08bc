# frozen_string_literal: true

module ProcessShared
  # +Enumerable+ for the fixed-length collections in shared memory ({SharedArray}, {Counters}); the class
  # provides +each+, +length+ and +closed?+.
  #
  # Enumerable's <tt>first(n)</tt>, <tt>take(n)</tt>, <tt>min(n)</tt>, <tt>max(n)</tt>, <tt>min_by(n)</tt>,
  # <tt>max_by(n)</tt>, <tt>each_slice(n)</tt> and <tt>each_cons(n)</tt> allocate room for +n+ elements
  # before iterating (Ruby 3.1): a huge +n+ would raise NoMemoryError, or take gigabytes. Here an +n+ beyond
  # the length is capped (to <tt>length + 1</tt>), which gives the same results. Closed, they raise
  # {ClosedError}.
  module CappedEnumerable
    include Enumerable

    # @!macro [new] ps.capped
    #   As +Enumerable+'s, with +n+ capped to <tt>length + 1</tt>.
    #   @raise [ClosedError] if closed (also for +n+ = 0)
    # @!method first(n = nil)
    #   @!macro ps.capped
    #   @return [Object, Array, nil] the first element (nil if none), or the first +n+
    # @!method take(n)
    #   @!macro ps.capped
    #   @return [Array] the first +n+ elements
    # @!method min(n = nil, &block)
    #   @!macro ps.capped
    #   @return [Object, Array] the smallest element, or the +n+ smallest
    # @!method max(n = nil, &block)
    #   @!macro ps.capped
    #   @return [Object, Array] the largest element, or the +n+ largest
    # @!method min_by(n = nil, &block)
    #   @!macro ps.capped
    #   @return [Object, Array, Enumerator] the element with the smallest block value, or the +n+ smallest
    # @!method max_by(n = nil, &block)
    #   @!macro ps.capped
    #   @return [Object, Array, Enumerator] the element with the largest block value, or the +n+ largest
    # @!method each_slice(n, &block)
    #   @!macro ps.capped
    #   @return [self, Enumerator] the elements in slices of +n+
    # @!method each_cons(n, &block)
    #   @!macro ps.capped
    #   @return [self, Enumerator] every run of +n+ consecutive elements

    %i[first take min max min_by max_by each_slice each_cons].each do |name|
      define_method(name) do |*args, &block|
        raise ClosedError, "#{self.class} is closed" if closed? # also for n = 0, which reads nothing

        n = args.first
        args[0] = length + 1 if args.size == 1 && n.is_a?(Integer) && n > length + 1
        super(*args, &block)
      end
    end
  end
end
