# frozen_string_literal: true

module ProcessShared
  # The version of the schema of {ProcessShared.named_objects} and of the +process_shared+ command's
  # +--json+ output. A change that removes or renames a key, or changes a value's type, takes a new
  # version; new keys may be added within one.
  NAMED_OBJECTS_SCHEMA_VERSION = 1

  class << self
    # Every named object of this machine (the files <tt>/dev/shm/process_shared.*</tt>), read without
    # taking any of their locks, so it is safe while they are in use and never blocks: the values are a
    # snapshot, a moment old. Nothing is changed, locked, created or removed. Files under the prefix that
    # are not objects of this gem (garbage, empty, truncated, being created, a FIFO, a symlink, another
    # user's without read permission) are reported with +"error"+ instead of crashing or being trusted;
    # files without the prefix are never listed.
    #
    # Each object is a Hash with String keys (the JSON schema, version {NAMED_OBJECTS_SCHEMA_VERSION}):
    #
    # - +"name"+ (String): the name given to +name:+
    # - +"class"+ (String, nil): +"ProcessShared::Mutex"+, ...; nil when unreadable
    # - +"size"+ (Integer, nil): the object's length in bytes (a SharedMemory's size, ...); nil when unreadable
    # - +"file_size"+, +"uid"+ (Integer, nil): the file's size in bytes and owner (also for another user's
    #   object this user may not read); nil if it vanished meanwhile
    # - +"mode"+ (String, nil): the file's permission bits in octal, e.g. +"0600"+
    # - +"owner"+ (Hash, nil): who holds its lock (a Mutex's or Monitor's owner, a ReadWriteLock's writer, a
    #   Queue's pusher or popper of the moment): +{"pid" => Integer or nil, "alive" => true, false or nil}+.
    #   +alive+ is judged by the owner registry, not the pid (nil: cannot tell, e.g. an owner in another
    #   mount namespace); the pid is the one the owner saw itself as, for display. nil when not held or not
    #   a lock.
    # - +"waiters"+ (Integer, nil): threads waiting on it, where the object counts them (Semaphore,
    #   ConditionVariable, Queue, Barrier; 0 for AtomicInteger, Counters, SharedMemory, SharedArray); nil
    #   where it only knows whether someone may wait (+"has_waiters"+ in the state)
    # - +"state"+ (Hash, nil), by class:
    #   - Mutex: +"locked"+, +"owner_died"+ (its owning thread ended holding it, not yet taken over),
    #     +"has_waiters"+ (Booleans); Monitor: the same and +"count"+ (the owner's re-entries)
    #   - Semaphore, BinarySemaphore: +"value"+, +"max"+, +"held"+ (permits held by live processes through
    #     tracked waits), +"reclaimed"+ (permits given back from dead holders, see +take_reclaimed+)
    #   - ConditionVariable: nothing (its +"waiters"+); AtomicInteger: +"value"+
    #   - Counters: +"values"+ (Array of the first 4096), +"count"+ (how many counters)
    #   - Event: +"set"+, +"has_waiters"+; CountDownLatch: +"count"+, +"has_waiters"+
    #   - Barrier: +"parties"+, +"broken"+ (its +"waiters"+ are the parties waiting now)
    #   - ReadWriteLock: +"write_locked"+, +"readers"+ (read holds of live processes), +"dead_writer"+
    #     (the pid of a writer that died holding it, not yet taken over, or nil), +"has_waiters"+
    #   - Queue: +"length"+, +"capacity"+, +"max"+ (nil: no limit), +"closed"+, +"locked"+
    #   - SharedMemory, SharedArray: nothing (their bytes are yours)
    # - +"error"+ (String, nil): why the object cannot be read (then +class+, +size+, +owner+, +waiters+
    #   and +state+ are nil)
    #
    # Linux only (macOS has no directory of shm objects: +Errno::ENOTSUP+).
    # @return [Array<Hash{String => Object}>] sorted by name
    # @raise [SystemCallError] if <tt>/dev/shm</tt> cannot be read
    def named_objects
      _named_objects
    end

    # The named object called +name+, as one entry of {named_objects}.
    # @param name [String]
    # @return [Hash{String => Object}]
    # @raise [Errno::ENOENT] if there is no object of that name
    # @raise [ArgumentError] if +name+ is not a valid name
    def inspect_named(name)
      _inspect_named(name)
    end

    # The metrics of named objects in Prometheus's text exposition format (version 0.0.4), for an
    # exporter: per object +process_shared_object{name,class} 1+ (or +process_shared_unreadable{name} 1+),
    # +process_shared_waiters+, +process_shared_owner_alive+ (1, 0; left out while nobody holds it or it
    # cannot be told), and one gauge per Integer or Boolean state field, named
    # <tt>process_shared_<field></tt> (Booleans as 1 and 0; a Counters' +values+ with an +index+ label).
    # @param objects [Array<Hash>] entries of {named_objects}
    # @return [String]
    def prometheus_text(objects = named_objects)
      objects.flat_map { |o| metric_lines(o) }.join("\n").concat("\n")
    end

    private

    def metric_lines(obj)
      return [%(process_shared_unreadable{name="#{label(obj["name"])}"} 1)] if obj["error"]

      labels = %(name="#{label(obj["name"])}",class="#{obj["class"].delete_prefix("ProcessShared::")}")
      lines = ["process_shared_object{#{labels}} 1"]
      lines << "process_shared_waiters{#{labels}} #{obj["waiters"]}" if obj["waiters"]
      alive = obj.dig("owner", "alive")
      lines << "process_shared_owner_alive{#{labels}} #{alive ? 1 : 0}" unless alive.nil?
      obj["state"].each do |field, value|
        case value
        when Integer then lines << "process_shared_#{field}{#{labels}} #{value}"
        when true, false then lines << "process_shared_#{field}{#{labels}} #{value ? 1 : 0}"
        when Array then value.each_with_index do |v, i|
                          lines << %(process_shared_#{field}{#{labels},index="#{i}"} #{v})
                        end
        end
      end
      lines
    end

    # A label value escaped as the text format wants (a file under the prefix may have any name).
    def label(value)
      value.gsub(/[\\"\n]/, "\\" => "\\\\", '"' => '\\"', "\n" => "\\n")
    end
  end
end
