# frozen_string_literal: true

module ProcessShared
  # Named objects, for processes that are not related by +fork+: <tt>Klass.new(*args, name: "myapp.jobs")</tt>
  # in two processes gives both the same object (a POSIX shared memory object: on Linux the file
  # <tt>/dev/shm/process_shared.<name></tt>; on macOS <tt>/ps.<name></tt>, hashed beyond 26 characters, see
  # docs/platforms.md). For every class.
  #
  # - +name+: 1..200 characters of <tt>[A-Za-z0-9._-]</tt> (else +ArgumentError+).
  # - +mode+: permission bits of a new object (default +0o600+).
  # - +create+: +:open_or_create+ (default), +:create_only+ (+Errno::EEXIST+ if it exists) or +:open_only+
  #   (+Errno::ENOENT+ if it does not).
  #
  # The creator's arguments count (a Semaphore's value, an AtomicInteger's initial value, a latch's count);
  # an opener's are checked where they are part of the object (a SharedMemory's size, a Counters' size, a
  # Queue's capacity and max, a Barrier's parties). Opening a name as another class, or with another
  # layout, raises {IncompatibleError} naming both. Two processes creating the same name at once get one
  # object, initialised once (by the process whose exclusive create succeeded; one left unfinished by a
  # creator that died is taken over by the next +:open_or_create+ opener after 2 s, while +:open_only+
  # then raises +Errno::ENOENT+). A file under the prefix that is not ours (garbage, truncated, zero-filled
  # of another size, a FIFO or device) is refused ({IncompatibleError} saying which) and left alone; a symlink raises
  # +Errno::ELOOP+ (never followed), a directory +Errno::EISDIR+, another user's object whose mode does not
  # let this user in +Errno::EACCES+. <tt>Klass.unlink(name)</tt> removes the name (those who have the
  # object keep it); <tt>Klass.exist?(name)</tt>. Anonymous objects (no +name:+) leave nothing in the filesystem.
  #
  # Space is reserved when the object is made: a full <tt>/dev/shm</tt> raises +Errno::ENOSPC+ (nothing is
  # left behind), never a SIGBUS on a later access.
  #
  # Limits: opening waits for a creator that is initialising the object (microseconds) with the GVL held;
  # and, as with any memory-mapped file, another program that truncates the file under
  # <tt>/dev/shm</tt> makes later accesses fail with SIGBUS.
  # +new_cond+ of a named Monitor is anonymous: unrelated processes use a named ConditionVariable.
  module Named
    # The class's object: anonymous without +name+, else the named object, opened or created.
    # @param args [Array] the class's own arguments (a Semaphore's value, a SharedMemory's size...)
    # @param name [String, nil] nil: an anonymous object, shared through fork only
    # @param mode [Integer] permission bits of a new named object
    # @param create [Symbol] +:open_or_create+, +:create_only+ or +:open_only+
    # @return [Object] the new object
    # @raise [ArgumentError] for an invalid name, or an unknown +create+
    # @raise [TypeError] if +name+ is not a String
    # @raise [Errno::EEXIST] with +:create_only+ if the name exists
    # @raise [Errno::ENOENT] with +:open_only+ if it does not
    # @raise [IncompatibleError] if the name holds another class, another layout, or a file that is not ours
    def new(*args, name: nil, mode: 0o600, create: :open_or_create)
      return super(*args) if name.nil?

      _new_named(name, mode, create, *args)
    end

    # Removes the name; processes that have the object keep using it.
    # @param name [String]
    # @return [nil]
    # @raise [Errno::ENOENT] if there is no object of that name
    # @raise [ArgumentError] for an invalid name
    def unlink(name)
      ProcessShared._shm_unlink(name)
      nil
    end

    # @param name [String]
    # @return [Boolean] whether a named object of that name exists
    # @raise [ArgumentError] for an invalid name
    def exist?(name)
      ProcessShared._shm_exist(name)
    end
  end

  [SharedMemory, SharedArray, Mutex, Monitor, Semaphore, BinarySemaphore, ConditionVariable, AtomicInteger,
   Counters, Event, CountDownLatch, Barrier, ReadWriteLock].each { |klass| klass.singleton_class.prepend(Named) }
  Queue.singleton_class.include(Named) # its own +new+ takes the keywords; +unlink+ and +exist?+ from here
end
