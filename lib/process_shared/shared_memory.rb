# frozen_string_literal: true

module ProcessShared
  # A fixed-size segment of shared memory, with the accessor family of +FFI::Pointer+. Created before +fork+,
  # it is shared with the children.
  #
  #   mem = ProcessShared::SharedMemory.new(:int)   # one C int (4 bytes)
  #   mem.put_int(0, 0)
  #   fork { mem.put_int(0, 42) }
  #   Process.wait
  #   mem.get_int(0)  # => 42
  #
  #   mem = ProcessShared::SharedMemory.new(1024)   # 1024 bytes
  #   fork { mem.write_object(["a", "b"]) }
  #   Process.wait
  #   mem.read_object # => ["a", "b"]
  #
  # == Creating
  # <tt>SharedMemory.new(size_or_type = 1, count = 1)</tt>: an Integer is a size in bytes (of +:uchar+); a
  # Symbol is an element type, with +count+ elements. A size or count below 1, or an unknown type, raises
  # +ArgumentError+; a size the system cannot map raises +Errno::ENOMEM+ (or +ArgumentError+ when it could
  # never be addressed). Readers: +size+ (bytes), +type+ (Symbol), +type_size+ (bytes), +count+, +address+.
  #
  # == Types
  # <tt>:char :uchar :short :ushort :int :uint :long :ulong :long_long :ulong_long :int8 :uint8 :int16
  # :uint16 :int32 :uint32 :int64 :uint64 :float :double :size_t :pointer</tt>, with this platform's C sizes.
  # Integer types take Integers only (+TypeError+ otherwise) and raise +RangeError+ for a value outside
  # the type; +:float+ and +:double+ take any real number (+:float+ rounds to the nearest single-precision
  # value and raises +RangeError+ for a finite value beyond its range; NaN and infinities are kept);
  # +:pointer+ reads back an Integer address and takes an Integer, +nil+ or an object responding to
  # +address+ (such as an +FFI::Pointer+).
  #
  # == Accessors (native)
  # For every type +T+ above:
  # - <tt>get_T(offset)</tt>, <tt>put_T(offset, value)</tt> (returns self)
  # - <tt>read_T</tt>, <tt>write_T(value)</tt>: the same at offset 0
  # - <tt>get_array_of_T(offset, n)</tt>, <tt>put_array_of_T(offset, array)</tt> (all or nothing)
  # - <tt>read_array_of_T(n)</tt>, <tt>write_array_of_T(array)</tt>
  # Bytes and strings (Strings read back are binary, ASCII-8BIT):
  # - <tt>get_bytes(offset, length)</tt>, <tt>put_bytes(offset, str, index = 0, length = nil)</tt>
  #   (+RangeError+ if +index+/+length+ fall outside +str+)
  # - <tt>read_bytes(length)</tt>, <tt>write_bytes(str, index = 0, length = nil)</tt>
  # - <tt>get_string(offset, length = nil)</tt>: the bytes up to the first NUL, within +length+ bytes (by
  #   default, to the end of the segment)
  # - <tt>put_string(offset, str)</tt>: the bytes of +str+ and a terminating NUL
  # - <tt>read_string(length = nil)</tt>: +length+ bytes, or up to the first NUL
  # - <tt>write_string(str, length = nil)</tt>: the bytes of +str+ (or its first +length+) at offset 0,
  #   without a NUL, as FFI does
  # - +clear+: zero every byte
  # Offsets are in bytes and need no alignment; values use the native byte order. Any access outside
  # <tt>0...size</tt> (negative offsets and lengths included) raises +IndexError+ and touches nothing.
  #
  # == Lifecycle
  # +close+ unmaps the segment in this process (idempotent; other processes keep theirs); any later access
  # raises {ClosedError}. +closed?+ tells. <tt>SharedMemory.open(...) { |mem| }</tt> closes it after the
  # block. +inspect+ shows the type, count and size.
  class SharedMemory
    extend Openable

    # What Marshal.load raises, besides TypeError and ArgumentError, for some malformed streams.
    MARSHAL_LOAD_ERRORS = [RegexpError, FrozenError, NoMethodError].freeze
    private_constant :MARSHAL_LOAD_ERRORS

    # Deepest nesting get_object reads back (as the native check counts it); put_object refuses deeper.
    MARSHAL_MAX_DEPTH = 1000
    private_constant :MARSHAL_MAX_DEPTH

    # Store +obj+ at +offset+ with +Marshal+: an 8-byte header (+"PSM1"+ and the dump's length, u32
    # little-endian) followed by the dump.
    # @raise [ClosedError] if the segment is closed (checked before +obj+ is dumped)
    # @raise [IndexError] if it does not fit between +offset+ and the end (nothing is written then)
    # @raise [TypeError] if +obj+ cannot be marshalled (nothing is written)
    # @raise [ArgumentError] if +obj+ is nested too deeply for {#get_object} to read it back (nothing is
    #   written; see {#get_object})
    # @return [self]
    def put_object(offset, obj)
      check_open
      _put_object_bytes(offset, Marshal.dump(obj, MARSHAL_MAX_DEPTH))
    end

    # The object stored at +offset+ by {#put_object}. Without a header there, the bytes from +offset+ to
    # the end are read as a raw +Marshal+ stream (as written by <tt>put_bytes(offset, Marshal.dump(obj))</tt>).
    #
    # Whatever the bytes are, this raises and never crashes or exhausts memory: bytes that are not a Marshal
    # stream raise +TypeError+ or +ArgumentError+, as +Marshal.load+ does. Where +Marshal.load+ itself would
    # raise something else for them (+RegexpError+ for a Regexp that does not compile, +FrozenError+ for
    # instance variables on +nil+ or an Integer, +NoMethodError+ for a BasicObject used as a Hash key), this
    # raises +ArgumentError+ (with the original as its +cause+); what a +marshal_load+ or +_load+ written in
    # Ruby raises passes unchanged. Before +Marshal.load+ sees them, the bytes are copied and checked, and
    # +ArgumentError+ is raised for a count (of Array or Hash elements, instance variables, Struct members)
    # larger than the bytes left can hold ("marshal data too short": Ruby 3.1 would first try to allocate for
    # it), and for nesting deeper than 1000 levels (each level inside a Hash key counting as 6), which could
    # overflow the stack of a thread or fiber. (A crafted stream can still name any loaded class and run its
    # +_load+/+marshal_load+, as with any +Marshal.load+.)
    # @raise [IndexError] if +offset+ is outside <tt>0..size</tt>
    # @raise [TypeError, ArgumentError] if the bytes are not a Marshal stream
    def get_object(offset)
      stream = _get_object_bytes(offset)
      begin
        Marshal.load(stream)
      rescue *MARSHAL_LOAD_ERRORS => e
        # Raised by Marshal.load's own code (its frame is on top), not by a marshal_load/_load hook. The
        # base label is "load" on every Ruby (3.4 labels the frame "Marshal.load", earlier ones "load").
        top = e.backtrace_locations&.first
        raise unless top&.base_label == "load" && ["<internal:marshal>", __FILE__].include?(top.path)

        raise ArgumentError, "marshal data does not describe a valid object (#{e.class}: #{e.message})"
      end
    end

    # {#put_object} at offset 0.
    def write_object(obj)
      put_object(0, obj)
    end

    # {#get_object} at offset 0.
    def read_object
      get_object(0)
    end

    # An +FFI::Pointer+ to the segment, bounded to its size. Needs the +ffi+ gem (<tt>require "ffi"</tt>).
    # The pointer is only valid until {#close}.
    # @raise [NotImplementedError] if FFI is not loaded
    # @raise [ClosedError] if the segment is closed
    def to_ptr
      check_open
      unless defined?(::FFI::Pointer)
        raise NotImplementedError, "#{self.class}#to_ptr needs the ffi gem: require \"ffi\" first"
      end

      # The pointer (and every slice or offset of it, which references its parent) keeps this object, and
      # so the mapping, alive: reading it after the SharedMemory is dropped and collected is safe.
      ::FFI::Pointer.new(address).slice(0, size).tap { |ptr| ptr.instance_variable_set(:@memory, self) }
    end

    private

    def check_open
      raise ClosedError, "#{self.class} is closed" if closed?
    end
  end

  # A fixed-length array of one element type in shared memory.
  #
  #   ary = ProcessShared::SharedArray.new(:int, 3)
  #   fork { ary[0] = 1; ary[-1] = 3 }
  #   Process.wait
  #   ary.to_a # => [1, 0, 3]
  #
  # <tt>SharedArray.new(type = :int, count = 1)</tt>. Native: <tt>[](i)</tt> and <tt>[]=(i, value)</tt>
  # (a negative +i+ counts from the end; out of range raises +IndexError+, a non-Integer +TypeError+),
  # +to_a+, +length+ (elements; +size+ stays the size in bytes, as for {SharedMemory}). It is +Enumerable+,
  # and still has every {SharedMemory} accessor.
  class SharedArray < SharedMemory
    include CappedEnumerable

    # Yields each element in order; an Enumerator without a block.
    # @return [self]
    def each
      return enum_for(:each) { length } unless block_given?

      i = 0
      n = length
      while i < n
        yield self[i]
        i += 1
      end
      self
    end
  end
end
