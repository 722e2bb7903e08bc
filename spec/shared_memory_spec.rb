# frozen_string_literal: true

require "rbconfig"

RSpec.describe ProcessShared::SharedMemory do
  # Integer types: [size, min, max] on x86_64 Linux.
  int_types = {
    char: [1, -2**7, 2**7 - 1], uchar: [1, 0, 2**8 - 1],
    short: [2, -2**15, 2**15 - 1], ushort: [2, 0, 2**16 - 1],
    int: [4, -2**31, 2**31 - 1], uint: [4, 0, 2**32 - 1],
    long: [8, -2**63, 2**63 - 1], ulong: [8, 0, 2**64 - 1],
    long_long: [8, -2**63, 2**63 - 1], ulong_long: [8, 0, 2**64 - 1],
    int8: [1, -2**7, 2**7 - 1], uint8: [1, 0, 2**8 - 1],
    int16: [2, -2**15, 2**15 - 1], uint16: [2, 0, 2**16 - 1],
    int32: [4, -2**31, 2**31 - 1], uint32: [4, 0, 2**32 - 1],
    int64: [8, -2**63, 2**63 - 1], uint64: [8, 0, 2**64 - 1],
    size_t: [8, 0, 2**64 - 1]
  }.freeze
  all_types = int_types.transform_values(&:first).merge(float: 4, double: 8, pointer: 8).freeze

  def raise_one_of(*classes)
    raise_error { |e| expect(classes).to include(e.class), "unexpected #{e.inspect}" }
  end

  def zeroed?(mem)
    mem.get_bytes(0, mem.size) == "\0".b * mem.size
  end

  describe ".new" do
    it "takes a size in bytes, as :uchar elements" do
      mem = described_class.new(24)
      expect([mem.size, mem.type, mem.type_size, mem.count]).to eq([24, :uchar, 1, 24])
    end

    it "defaults to one byte" do
      mem = described_class.new
      expect([mem.size, mem.type, mem.count]).to eq([1, :uchar, 1])
    end

    it "takes an element type and a count, with this platform's C sizes" do
      all_types.each do |type, size|
        mem = described_class.new(type, 3)
        expect([mem.type, mem.type_size, mem.count, mem.size]).to eq([type, size, 3, 3 * size]), type.inspect
      end
      expect(described_class.new(:double).size).to eq(8)
    end

    it "starts zeroed" do
      expect(zeroed?(described_class.new(4096 + 3))).to be(true)
    end

    it "raises ArgumentError for a size or count below 1" do
      expect { described_class.new(0) }.to raise_error(ArgumentError, /size/)
      expect { described_class.new(-1) }.to raise_error(ArgumentError)
      expect { described_class.new(-2**70) }.to raise_error(ArgumentError)
      expect { described_class.new(:int, 0) }.to raise_error(ArgumentError, /count/)
      expect { described_class.new(:int, -3) }.to raise_error(ArgumentError)
    end

    it "raises ArgumentError for an unknown type, TypeError for a non-Integer non-Symbol" do
      expect { described_class.new(:quux) }.to raise_error(ArgumentError, /unknown type :quux/)
      expect { described_class.new("int") }.to raise_error(TypeError)
      expect { described_class.new(1.5) }.to raise_error(TypeError)
      expect { described_class.new(nil) }.to raise_error(TypeError)
      expect { described_class.new(:int, "2") }.to raise_error(TypeError)
      expect { described_class.new(16, 4) }.to raise_error(ArgumentError, /count/)
      expect { described_class.new(1, 2, 3) }.to raise_error(ArgumentError, /wrong number of arguments/)
    end

    it "rejects huge sizes cleanly" do
      [[2**62], [2**63], [2**64], [2**200], [:double, 2**61], [:int64, 2**62], [:int, 2**100]].each do |args|
        expect { described_class.new(*args) }.to raise_one_of(Errno::ENOMEM, ArgumentError)
      end
    end

    it "creates instances of subclasses" do
      sub = Class.new(described_class)
      expect(sub.new(:int).tap { |m| m.put_int(0, 5) }).to be_a(sub).and have_attributes(size: 4)
    end
  end

  describe "integer accessors" do
    int_types.each do |type, (size, min, max)|
      context ":#{type}" do
        let(:mem) { described_class.new(:uchar, 32) }

        it "round-trips 0, -1/1, min and max at any offset" do
          [0, 1, min, max, min == 0 ? 7 : -1].each do |v|
            [0, 3, 32 - size].each do |off|
              expect(mem.__send__("put_#{type}", off, v)).to equal(mem)
              expect(mem.__send__("get_#{type}", off)).to eq(v)
            end
          end
        end

        it "raises RangeError (and writes nothing) for values outside the type" do
          mem.put_bytes(0, "\xAB".b * 32)
          [max + 1, min - 1, 2**64, -2**64, 2**100].each do |v|
            expect { mem.__send__("put_#{type}", 0, v) }.to raise_error(RangeError)
          end
          expect(mem.get_bytes(0, 32)).to eq("\xAB".b * 32)
        end

        it "raises TypeError for non-Integers" do
          ["1", 1.0, 1.5, nil, :one, Object.new].each do |v|
            expect { mem.__send__("put_#{type}", 0, v) }.to raise_error(TypeError)
          end
        end

        it "checks bounds: offset size - type_size is the last valid one" do
          expect { mem.__send__("get_#{type}", 32 - size) }.not_to raise_error
          expect { mem.__send__("get_#{type}", 32 - size + 1) }.to raise_error(IndexError)
          expect { mem.__send__("put_#{type}", 32 - size + 1, 0) }.to raise_error(IndexError)
          expect { mem.__send__("get_#{type}", -1) }.to raise_error(IndexError)
          expect { mem.__send__("put_#{type}", -1, 0) }.to raise_error(IndexError)
        end

        it "has read_/write_ at offset 0 and array accessors" do
          mem = described_class.new(type, 5)
          mem.__send__("write_#{type}", max)
          expect(mem.__send__("read_#{type}")).to eq(max)
          values = [min, max, 0, min.zero? ? 9 : -9]
          mem.__send__("put_array_of_#{type}", size, values)
          expect(mem.__send__("get_array_of_#{type}", size, 4)).to eq(values)
          mem.__send__("write_array_of_#{type}", values.reverse)
          expect(mem.__send__("read_array_of_#{type}", 5)).to eq(values.reverse + [values.last])
        end
      end
    end

    let(:mem) { described_class.new(16) }

    it "uses native byte order and needs no alignment" do
      mem.put_uint32(1, 0x01020304)
      expect(mem.get_bytes(1, 4)).to eq([0x01020304].pack("L"))
      mem.put_int64(7, -2)
      expect(mem.get_bytes(7, 8)).to eq([-2].pack("q"))
      expect(mem.get_int64(7)).to eq(-2)
    end

    it "reads signed and unsigned views of the same bytes" do
      mem.put_char(0, -1)
      expect(mem.get_uchar(0)).to eq(255)
      mem.put_uint64(8, 2**64 - 1)
      expect(mem.get_int64(8)).to eq(-1)
    end

    it "raises IndexError for huge, negative and Bignum offsets, naming offset, length and size" do
      expect { mem.get_int(13) }.to raise_error(IndexError, /offset 13.*length 4.*size 16/)
      expect { mem.get_int(2**64) }.to raise_error(IndexError, /#{2**64}/)
      expect { mem.get_int(2**64 - 1) }.to raise_error(IndexError)
      expect { mem.get_int(2**63 - 1) }.to raise_error(IndexError)
      expect { mem.get_int(-2**70) }.to raise_error(IndexError)
      expect { mem.put_int(2**200, 1) }.to raise_error(IndexError)
    end

    it "raises TypeError for a non-Integer offset" do
      expect { mem.get_int("0") }.to raise_error(TypeError)
      expect { mem.get_int(nil) }.to raise_error(TypeError)
      expect { mem.put_int(0.0, 1) }.to raise_error(TypeError)
    end
  end

  describe "floating point accessors" do
    let(:mem) { described_class.new(:double, 4) }

    it "round-trips doubles exactly" do
      [0.0, -0.0, 1.5, -1e-300, Float::MAX, -Float::MAX, Float::MIN, 0.1, Math::PI].each do |v|
        mem.put_double(3, v)
        expect(mem.get_double(3)).to eql(v)
      end
      expect(mem.get_array_of_double(0, 4).size).to eq(4)
    end

    it "rounds floats to single precision" do
      mem.put_float(0, 0.1)
      expect(mem.get_float(0)).to eq([0.1].pack("f").unpack1("f"))
      expect(mem.get_float(0)).to eq(0.10000000149011612)
      mem.put_float(0, 3.4028235e38) # rounds to FLT_MAX
      expect(mem.get_float(0)).to eq(3.4028234663852886e+38)
      mem.put_float(0, 1e-50) # underflows to 0
      expect(mem.get_float(0)).to eq(0.0)
    end

    it "accepts Integers and Rationals" do
      mem.put_double(0, 1)
      expect(mem.get_double(0)).to eql(1.0)
      mem.put_float(0, 3)
      expect(mem.get_float(0)).to eql(3.0)
      mem.put_double(0, 2**70)
      expect(mem.get_double(0)).to eq(2.0**70)
      mem.put_double(0, Rational(1, 4))
      expect(mem.get_double(0)).to eq(0.25)
    end

    it "keeps NaN and infinities" do
      mem.put_float(0, Float::NAN)
      expect(mem.get_float(0)).to be_nan
      mem.put_double(8, -Float::INFINITY)
      expect(mem.get_double(8)).to eq(-Float::INFINITY)
      mem.put_float(0, Float::INFINITY)
      expect(mem.get_float(0)).to eq(Float::INFINITY)
    end

    it "raises RangeError for a finite value beyond float's range" do
      mem.put_float(0, 1.0)
      [1e39, -1e39, Float::MAX, 2**200].each do |v|
        expect { mem.put_float(0, v) }.to raise_error(RangeError)
      end
      expect(mem.get_float(0)).to eq(1.0)
    end

    it "raises TypeError for non-numbers" do
      ["1.0", nil, :x, Object.new, Complex(1, 1)].each do |v|
        expect { mem.put_double(0, v) }.to raise_error(TypeError)
        expect { mem.put_float(0, v) }.to raise_error(TypeError)
      end
    end
  end

  describe "pointer accessors" do
    let(:mem) { described_class.new(:pointer, 2) }

    it "stores Integer addresses, nil as 0, and objects responding to #address" do
      mem.put_pointer(0, 0xdead_beef)
      expect(mem.get_pointer(0)).to eq(0xdead_beef)
      mem.put_pointer(8, 2**64 - 1)
      expect(mem.get_pointer(8)).to eq(2**64 - 1)
      mem.put_pointer(0, nil)
      expect(mem.get_pointer(0)).to eq(0)
      mem.put_pointer(0, Struct.new(:address).new(0x1234))
      expect(mem.read_pointer).to eq(0x1234)
      mem.write_array_of_pointer([1, 2])
      expect(mem.read_array_of_pointer(2)).to eq([1, 2])
    end

    it "raises TypeError/RangeError for bad pointers" do
      expect { mem.put_pointer(0, "0x10") }.to raise_error(TypeError)
      expect { mem.put_pointer(0, 1.5) }.to raise_error(TypeError)
      expect { mem.put_pointer(0, -1) }.to raise_error(RangeError)
      expect { mem.put_pointer(0, 2**64) }.to raise_error(RangeError)
    end
  end

  describe "array accessors" do
    let(:mem) { described_class.new(:int, 4) }

    it "reads and writes runs of elements" do
      mem.put_array_of_int(4, [1, -2, 3])
      expect(mem.get_array_of_int(0, 4)).to eq([0, 1, -2, 3])
      expect(mem.get_array_of_int(4, 0)).to eq([])
      expect(mem.put_array_of_int(16, [])).to equal(mem)
    end

    it "raises IndexError past the end, for negative counts and huge counts" do
      expect { mem.get_array_of_int(0, 5) }.to raise_error(IndexError)
      expect { mem.get_array_of_int(4, 4) }.to raise_error(IndexError)
      expect { mem.get_array_of_int(0, -1) }.to raise_error(IndexError)
      expect { mem.get_array_of_int(0, 2**62) }.to raise_error(IndexError)
      expect { mem.get_array_of_int(0, 2**100) }.to raise_error(IndexError)
      expect { mem.read_array_of_int(5) }.to raise_error(IndexError)
      expect { mem.put_array_of_int(8, [1, 2, 3]) }.to raise_error(IndexError)
      expect { mem.write_array_of_int([1] * 5) }.to raise_error(IndexError)
      expect(zeroed?(mem)).to be(true)
    end

    it "writes nothing when an element is bad" do
      expect { mem.write_array_of_int([1, 2, "3"]) }.to raise_error(TypeError)
      expect { mem.write_array_of_int([1, 2, 2**40]) }.to raise_error(RangeError)
      expect(zeroed?(mem)).to be(true)
    end

    it "raises TypeError for a non-Array" do
      expect { mem.write_array_of_int(5) }.to raise_error(TypeError)
    end
  end

  describe "bytes and strings" do
    let(:mem) { described_class.new(16) }

    it "round-trips bytes with NULs inside as a binary String" do
      data = "a\0b\0\xFF\0".b
      expect(mem.put_bytes(2, data)).to equal(mem)
      got = mem.get_bytes(2, 6)
      expect(got).to eq(data)
      expect(got.encoding).to eq(Encoding::BINARY)
      expect(mem.get_bytes(16, 0)).to eq("")
    end

    it "writes part of a String with index and length" do
      mem.put_bytes(0, "abcdef", 2)
      expect(mem.get_bytes(0, 4)).to eq("cdef")
      mem.put_bytes(0, "abcdef", 1, 2)
      expect(mem.get_bytes(0, 4)).to eq("bcef")
      mem.write_bytes("xyz", 1, 1)
      expect(mem.read_bytes(2)).to eq("yc")
    end

    it "raises RangeError for index/length outside the String" do
      expect { mem.put_bytes(0, "abc", 4) }.to raise_error(RangeError)
      expect { mem.put_bytes(0, "abc", -1) }.to raise_error(RangeError)
      expect { mem.put_bytes(0, "abc", 1, 3) }.to raise_error(RangeError)
      expect { mem.put_bytes(0, "abc", 1, -1) }.to raise_error(RangeError)
      expect { mem.put_bytes(0, "abc", 1, 2**100) }.to raise_error(RangeError)
    end

    it "raises IndexError outside the segment and writes nothing" do
      expect { mem.put_bytes(10, "x" * 7) }.to raise_error(IndexError)
      expect { mem.put_bytes(-1, "x") }.to raise_error(IndexError)
      expect { mem.get_bytes(0, 17) }.to raise_error(IndexError)
      expect { mem.get_bytes(8, -1) }.to raise_error(IndexError)
      expect { mem.get_bytes(17, 0) }.to raise_error(IndexError)
      expect { mem.read_bytes(2**64) }.to raise_error(IndexError)
      expect(zeroed?(mem)).to be(true)
    end

    it "raises TypeError for non-Strings" do
      expect { mem.put_bytes(0, 5) }.to raise_error(TypeError)
      expect { mem.put_string(0, nil) }.to raise_error(TypeError)
    end

    it "put_string writes a terminating NUL; get_string stops at the first NUL" do
      mem.put_bytes(0, "z" * 16)
      mem.put_string(3, "hello")
      expect(mem.get_bytes(3, 6)).to eq("hello\0")
      expect(mem.get_string(3)).to eq("hello")
      expect(mem.get_string(3, 2)).to eq("he")
      expect(mem.get_string(9)).to eq("z" * 7) # no NUL: up to the end
      expect(mem.get_string(16)).to eq("")
      expect { mem.put_string(11, "hello") }.to raise_error(IndexError) # no room for the NUL
      expect { mem.put_string(10, "hello") }.not_to raise_error
      expect { mem.get_string(3, 14) }.to raise_error(IndexError)
    end

    it "read_string/write_string work at offset 0 like FFI's" do
      mem.write_string("hello")
      expect(mem.read_string).to eq("hello")
      mem.write_string("hi")
      expect(mem.read_string(2)).to eq("hi")
      expect(mem.read_string).to eq("hillo") # write_string writes no NUL, as in FFI
      mem.put_string(0, "hi")
      expect(mem.read_string).to eq("hi")
    end

    it "round-trips UTF-8 bytes" do
      mem.put_string(0, "héllo")
      expect(mem.get_string(0).force_encoding(Encoding::UTF_8)).to eq("héllo")
    end

    it "clear zeroes everything" do
      mem.put_bytes(0, "\xFF".b * 16)
      expect(mem.clear).to equal(mem)
      expect(zeroed?(mem)).to be(true)
    end
  end

  describe "objects" do
    let!(:mem) { described_class.new(1024) } # eager: created before any fork

    it "runs the README example: a child writes an object, the parent reads it" do
      pid = fork_child { mem.write_object(%w[a b]) }
      wait_child(pid)
      expect(mem.read_object).to eq(%w[a b])
    end

    it "round-trips objects at any offset" do
      objects = [nil, 42, 2**100, -1.5, "héllo", :sym, [1, [2, { a: "b" }]], { "k" => Time.at(0) }, 1..5,
                 "\0bin\0".b]
      objects.each do |obj|
        mem.put_object(13, obj)
        expect(mem.get_object(13)).to eq(obj)
        expect(mem.get_object(13).encoding).to eq(obj.encoding) if obj.is_a?(String)
      end
      mem.write_object(%w[x])
      expect(mem.read_object).to eq(%w[x])
    end

    it "writes a PSM1 header with the little-endian length" do
      mem.write_object("x")
      dump = Marshal.dump("x")
      expect(mem.get_bytes(0, 8)).to eq("PSM1".b + [dump.bytesize].pack("V"))
      expect(mem.get_bytes(8, dump.bytesize)).to eq(dump.b)
    end

    it "reads raw Marshal data written with put_bytes" do
      mem.put_bytes(5, Marshal.dump([1, 2, 3]))
      expect(mem.get_object(5)).to eq([1, 2, 3])
    end

    it "raises IndexError and writes nothing when the object does not fit" do
      small = described_class.new(16)
      small.put_bytes(0, "\xAB".b * 16)
      expect { small.write_object("x" * 20) }.to raise_error(IndexError, /does not fit/)
      expect { small.put_object(10, [1, 2, 3]) }.to raise_error(IndexError)
      expect { small.put_object(-1, 1) }.to raise_error(IndexError)
      expect { small.put_object(17, 1) }.to raise_error(IndexError)
      expect(small.get_bytes(0, 16)).to eq("\xAB".b * 16)
      fitting = Marshal.dump(:ab).bytesize + 8
      expect { small.put_object(16 - fitting + 1, :ab) }.to raise_error(IndexError)
      expect { small.put_object(16 - fitting, :ab) }.not_to raise_error
      expect(small.get_object(16 - fitting)).to eq(:ab)
    end

    it "writes nothing when the object cannot be marshalled" do
      expect { mem.write_object(proc {}) }.to raise_error(TypeError)
      expect(zeroed?(mem)).to be(true)
    end

    it "raises TypeError or ArgumentError for bytes that are not a Marshal stream" do
      garbage = [
        -> { mem.clear },
        -> { mem.put_bytes(0, "not marshal data at all") },
        -> { mem.put_bytes(0, Random.new(42).bytes(1024)) },
        -> { mem.put_bytes(0, "\x04\x08[\x7f".b) }, # truncated array
        -> { mem.put_bytes(0, "PSM1".b + [0].pack("V")) } # empty payload
      ]
      garbage.each do |setup|
        setup.call
        expect { mem.read_object }.to raise_one_of(TypeError, ArgumentError)
      end
      expect { mem.get_object(1024) }.to raise_error(ArgumentError) # no bytes left
    end

    it "raises ArgumentError for a header whose length runs past the end" do
      mem.put_bytes(1000, "PSM1".b + [17].pack("V"))
      expect { mem.get_object(1000) }.to raise_error(ArgumentError, /17 bytes/)
      mem.put_bytes(0, "PSM1".b + [2**32 - 1].pack("V"))
      expect { mem.read_object }.to raise_error(ArgumentError)
    end

    it "raises IndexError/TypeError for bad offsets" do
      expect { mem.get_object(-1) }.to raise_error(IndexError)
      expect { mem.get_object(1025) }.to raise_error(IndexError)
      expect { mem.get_object(2**70) }.to raise_error(IndexError)
      expect { mem.get_object("0") }.to raise_error(TypeError)
    end

    it "costs about as much as Marshal itself" do
      obj = { "list" => (1..20).to_a, "name" => "x" * 50 }
      best_of = lambda do |&work|
        Array.new(3) do
          start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          2000.times(&work)
          Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
        end.min
      end
      bare = best_of.call { Marshal.load(Marshal.dump(obj)) }
      shared = best_of.call do
        mem.write_object(obj)
        mem.read_object
      end
      expect(shared).to be < bare * 3 + 0.01
    end
  end

  describe "across fork" do
    it "shares writes in both directions" do
      mem = described_class.new(:int64, 2)
      h = handshake
      pid = fork_child do
        mem.put_int64(0, -42)
        h.signal
        sleep 0.01 until mem.get_int64(8) == 7
      end
      h.wait
      expect(mem.get_int64(0)).to eq(-42)
      mem.put_int64(8, 7)
      wait_child(pid)
    end

    it "runs the README counter example with a Mutex" do
      mutex = ProcessShared::Mutex.new
      mem = described_class.new(:int)
      mem.put_int(0, 0)
      pids = [1, -1].map do |delta|
        fork_child do
          10.times do
            mutex.synchronize do
              v = mem.get_int(0)
              sleep 0.001
              mem.put_int(0, v + delta)
            end
          end
        end
      end
      wait_children(pids)
      expect(mem.get_int(0)).to eq(0)
    end

    it "a child closing its handle does not affect the parent" do
      mem = described_class.new(:int)
      mem.put_int(0, 5)
      wait_child(fork_child { mem.close })
      expect(mem.get_int(0)).to eq(5)
    end
  end

  describe "#close" do
    let(:mem) { described_class.new(:int, 2) }

    it "is idempotent and makes every access raise ClosedError" do
      expect(mem.closed?).to be(false)
      mem.close
      mem.close
      expect(mem.closed?).to be(true)
      calls = [
        -> { mem.get_int(0) }, -> { mem.put_int(0, 1) }, -> { mem.read_int }, -> { mem.write_int(1) },
        -> { mem.get_array_of_int(0, 1) }, -> { mem.put_array_of_int(0, [1]) }, -> { mem.get_bytes(0, 1) },
        -> { mem.put_bytes(0, "x") }, -> { mem.get_string(0) }, -> { mem.put_string(0, "x") },
        -> { mem.read_string }, -> { mem.write_string("x") }, -> { mem.read_bytes(1) },
        -> { mem.write_bytes("x") }, -> { mem.clear }, -> { mem.address }, -> { mem.write_object(1) },
        -> { mem.read_object }, -> { mem.get_double(0) }, -> { mem.get_int(99) }
      ]
      calls.each { |c| expect(&c).to raise_error(ProcessShared::ClosedError) }
      expect([mem.size, mem.type, mem.count]).to eq([8, :int, 2])
      expect(mem.inspect).to include("closed")
    end

    it "is closed after .open's block, which returns the block's value" do
      kept = nil
      value = described_class.open(:int) do |m|
        kept = m
        m.put_int(0, 3)
        m.get_int(0)
      end
      expect(value).to eq(3)
      expect(kept.closed?).to be(true)
      expect(described_class.open(8)).to be_a(described_class)
    end
  end

  it "inspects type, count and size" do
    expect(described_class.new(:short, 3).inspect).to match(/SharedMemory.*type=:short.*count=3.*size=6/)
  end

  it "exposes the address" do
    expect(described_class.new(4).address).to be_a(Integer).and be > 0
  end

  describe "#to_ptr" do
    it "raises NotImplementedError naming ffi when FFI is not loaded" do
      script = <<~RUBY
        require "process_shared"
        begin
          ProcessShared::SharedMemory.new(4).to_ptr
        rescue NotImplementedError => e
          puts e.message
        end
      RUBY
      out = IO.popen([RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script], &:read)
      expect(out).to match(/ffi/)
    end

    it "returns an FFI::Pointer bounded to the segment when FFI is loaded" do
      r, w = IO.pipe
      pid = fork_child do
        r.close
        begin
          require "ffi"
        rescue LoadError
          w.write("skip")
          next
        end
        mem = described_class.new(:int, 2)
        mem.put_int(4, 77)
        ptr = mem.to_ptr
        w.write([ptr.class, ptr.address == mem.address, ptr.size, ptr.get_int(4)].inspect)
      end
      w.close
      out = r.read
      wait_child(pid)
      skip "ffi gem not installed" if out == "skip"
      expect(out).to eq("[FFI::Pointer, true, 8, 77]")
    end
  end
end
