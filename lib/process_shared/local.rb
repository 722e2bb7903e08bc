# frozen_string_literal: true

module ProcessShared
  # Named objects of this host, opened through the same methods as {Postgres}'s, so that code written
  # against one runs on the other by changing where its objects come from:
  #
  #   objects = ProcessShared::Local.new(namespace: "myapp")                       # one host
  #   objects = ProcessShared::Postgres.new(ENV["DATABASE_URL"], namespace: "myapp") # many hosts
  #   objects.mutex("jobs").synchronize { ... }
  #
  # Each object is the named local object +"NAMESPACE.NAME"+ (see {Named}).
  class Local
    # @return [String]
    attr_reader :namespace

    # @param namespace [String] prefix of every name (the same characters as a name)
    # @raise [ArgumentError] for a bad namespace
    def initialize(namespace: "default")
      raise ArgumentError, "namespace must be 1..100 characters of [A-Za-z0-9._-], got #{namespace.inspect}" unless
        namespace.is_a?(String) && /\A[A-Za-z0-9._-]{1,100}\z/.match?(namespace)

      @namespace = namespace.dup.freeze
    end

    # @return [ProcessShared::Mutex]
    def mutex(name) = Mutex.new(name: full(name))

    # @return [ProcessShared::Semaphore]
    def semaphore(name, count = 1) = Semaphore.new(count, name: full(name))

    # @return [ProcessShared::ReadWriteLock]
    def read_write_lock(name) = ReadWriteLock.new(name: full(name))

    # @return [ProcessShared::ConditionVariable]
    def condition_variable(name) = ConditionVariable.new(name: full(name))

    # @return [ProcessShared::Event]
    def event(name) = Event.new(name: full(name))

    # @return [ProcessShared::CountDownLatch]
    def count_down_latch(name, count) = CountDownLatch.new(count, name: full(name))

    # @return [ProcessShared::Barrier]
    def barrier(name, parties) = Barrier.new(parties, name: full(name))

    # @return [ProcessShared::AtomicInteger]
    def atomic_integer(name, initial = 0) = AtomicInteger.new(initial, name: full(name))

    # @return [ProcessShared::Counters]
    def counters(name, size) = Counters.new(size, name: full(name))

    # @return [ProcessShared::Queue]
    def queue(name, max: nil) = Queue.new(max: max, name: full(name))

    # Removes the object's name. @return [Boolean] whether there was one
    def unlink(name)
      Mutex.unlink(full(name))
      true
    rescue Errno::ENOENT
      false
    end

    # @return [Boolean]
    def exist?(name) = Mutex.exist?(full(name))

    private

    def full(name)
      raise TypeError, "name must be a String, got #{name.class}" unless name.is_a?(String)

      "#{@namespace}.#{name}"
    end
  end
end
