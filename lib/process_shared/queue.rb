# frozen_string_literal: true

module ProcessShared
  # A bounded FIFO of objects shared by processes: each object is stored as its Marshal dump in a ring
  # buffer of +capacity+ bytes in shared memory (+max+ optionally limits the number of elements).
  #
  #   jobs = ProcessShared::Queue.new(capacity: 1 << 20)
  #   4.times { fork { while (job = jobs.pop) do run(job) end } }   # pop returns nil once closed and empty
  #   urls.each { |u| jobs << { url: u } }
  #   jobs.close
  #   Process.waitall
  #
  # Native: +size+/+length+, +empty?+, +clear+, +close+ (no more pushes: they raise +ClosedQueueError+;
  # pops drain what is left, then return nil; waiters are woken), +closed?+, +num_waiting+, +max+,
  # +capacity+, +inspect+. Unlike the other classes, +close+ closes the queue for every process (as
  # +Thread::Queue#close+ does); the memory is released when the object is collected, or after the block
  # of <tt>Queue.open(...) { |q| }</tt>, which leaves the queue open for the others.
  #
  # Blocking calls release the GVL and are interruptible; an interrupt that lands just as a push or pop
  # succeeds takes it back. A process killed in the middle of a push or pop leaves the queue usable and
  # never a torn record: a push counts only once its record is complete, a pop only once it has copied its
  # record out (a pop killed after that loses that one element). An element that the popping process
  # cannot load (its class is not defined there) makes +pop+ raise Marshal's error and stays at the front.
  class Queue
    extend Openable

    # @!method size
    #   @return [Integer] the number of elements (also +length+)

    # @!method empty?
    #   @return [Boolean] whether it holds no element

    # @!method clear
    #   Removes every element (waking pushers that wait for room).
    #   @return [self]

    # @!method close
    #   Closes the queue for every process (as +Thread::Queue#close+): pushes raise +ClosedQueueError+, pops
    #   drain what is left and then return nil; waiters are woken. Idempotent.
    #   @return [self]

    # @!method closed?
    #   @return [Boolean] whether any process closed it

    # @!method num_waiting
    #   @return [Integer] how many threads (of all processes) wait in {#push} or {#pop}

    # @!method max
    #   @return [Integer, nil] the most elements it holds at once (nil: only {#capacity} limits)

    # @!method capacity
    #   @return [Integer] the bytes of records it holds (the largest dump {#push} accepts)

    # @!method inspect
    #   The state (size, capacity, max, closed, waiting), read without blocking.
    #   @return [String]

    # @param capacity [Integer] bytes for the records (1..2**30); an object whose dump is larger cannot
    #   be pushed
    # @param max [Integer, nil] the most elements at once (nil: only +capacity+ limits)
    # @param name [String, nil] a named queue (see {Named}); +mode:+ and +create:+ as there
    # @param mode [Integer] permission bits of a new named queue
    # @param create [Symbol] +:open_or_create+, +:create_only+ or +:open_only+
    # @return [Queue]
    # @raise [TypeError] if +capacity+ or +max+ is not an Integer
    # @raise [ArgumentError] if one is out of range
    # @raise [IncompatibleError] if a named queue that exists has another +capacity+ or +max+
    def self.new(capacity: 1 << 20, max: nil, name: nil, mode: 0o600, create: :open_or_create)
      name.nil? ? _create(capacity, max) : _create_named(name, mode, create, capacity, max)
    end

    # Appends +obj+, waiting while the queue is full (as +Thread::SizedQueue#push+).
    # @param non_block [Boolean] raise +ThreadError+ at once instead of waiting when full
    # @param timeout [Numeric, nil] seconds to wait for room (nil: forever, 0: not at all)
    # @return [self, nil] nil if the timeout passed first
    # @raise [TypeError] if Marshal cannot dump +obj+ (nothing is enqueued)
    # @raise [ArgumentError] if the dump is larger than {#capacity}, or both +non_block+ and +timeout+ are
    #   given (as Ruby 3.2's +SizedQueue#push+)
    # @raise [ThreadError] if +non_block+ and the queue is full
    # @raise [ClosedQueueError] if the queue is closed ({ProcessShared::ClosedQueueError}, a
    #   +::ClosedQueueError+)
    # @raise [ArgumentError] for a negative or non-numeric timeout
    def push(obj, non_block = false, timeout: nil) # rubocop:disable Style/OptionalBooleanParameter -- SizedQueue's
      raise ArgumentError, "can't set a timeout if non_block is enabled" if non_block && !timeout.nil?

      _push(Marshal.dump(obj), !!non_block, timeout) ? self : nil
    end
    alias << push
    alias enq push

    # Removes and returns the oldest element, waiting while the queue is empty. With a block, yields it and
    # answers the block's value; if the block raises (or is interrupted), the element goes back to the front
    # of the queue for another consumer. (Unlike on PostgreSQL, an element whose consumer is SIGKILLed inside
    # the block is lost: the pop has already happened.)
    # @param non_block [Boolean] raise +ThreadError+ at once instead of waiting when empty
    # @param timeout [Numeric, nil] seconds to wait (nil: forever)
    # @yield [obj] the element, still owed to the queue until the block returns
    # @return [Object, nil] nil on timeout, or when the queue is closed and empty (the block is not called)
    # @raise [ThreadError] if +non_block+ and the queue is empty
    # @raise [ArgumentError] if both +non_block+ and +timeout+ are given (as Ruby 3.2's +Queue#pop+)
    # @raise [TypeError, ArgumentError] if this process cannot load the element (its class is not defined
    #   here, say): the element stays at the front, for a process that can
    def pop(non_block = false, timeout: nil) # rubocop:disable Style/OptionalBooleanParameter -- Thread::Queue's
      raise ArgumentError, "can't set a timeout if non_block is enabled" if non_block && !timeout.nil?

      got = take(non_block, timeout)
      return got&.first unless block_given? && got

      done = false
      begin
        value = yield got.first
        done = true
        value
      ensure
        Thread.handle_interrupt(Object => :never) { _unshift(got.last) } unless done
      end
    end
    alias shift pop
    alias deq pop

    alias length size

    private

    # [element, its dump] of the oldest element, or nil (timeout, or closed and empty).
    def take(non_block, timeout)
      Thread.handle_interrupt(Object => :never) do
        bytes = nil
        begin
          # Assigned inside: an interrupt due as the block ends is raised after the assignment.
          Thread.handle_interrupt(Object => :immediate) { bytes = _pop(non_block ? true : false, timeout) }
          return nil unless bytes

          obj = Marshal.load(bytes) # rubocop:disable Security/MarshalLoad -- our own dumps
        rescue Exception # rubocop:disable Lint/RescueException -- whatever it is, the element is not lost
          _unshift(bytes) if bytes
          raise
        end
        _unshift(bytes) if Thread.pending_interrupt? # it is raised as we leave: the element stays queued
        [obj, bytes]
      end
    end

    public

    # Whether this Ruby's +Thread::Queue#freeze+ raises +TypeError+ (3.3 and later: a frozen queue could
    # still change); a ProcessShared::Queue follows the running Ruby.
    FREEZE_REFUSED = begin
      Thread::Queue.new.freeze
      false
    rescue TypeError
      true
    end
    private_constant :FREEZE_REFUSED

    if FREEZE_REFUSED
      # Refused, as +Thread::Queue#freeze+ is on this Ruby: the queue changes whatever Ruby thinks.
      # @raise [TypeError]
      def freeze
        raise TypeError, "cannot freeze #{inspect}"
      end
    end

    class << self
      private

      # +Queue.open(...) { |q| }+ releases this process's handle after the block (then +q.closed?+ is
      # true and other calls on +q+, +close+ included, raise {ClosedError}) but leaves the queue open for
      # the others: {#close} would close it for every process, as +Thread::Queue#close+ does.
      def release_after_open(queue)
        queue.__send__(:_release)
      end
    end
  end
end
