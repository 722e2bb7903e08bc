# frozen_string_literal: true

RSpec.describe ProcessShared::SharedArray do
  describe ".new" do
    it "defaults to one :int" do
      ary = described_class.new
      expect([ary.type, ary.length, ary.size, ary.to_a]).to eq([:int, 1, 4, [0]])
    end

    it "takes a type and a count; length counts elements, size stays in bytes" do
      ary = described_class.new(:double, 3)
      expect([ary.type, ary.type_size, ary.length, ary.count, ary.size]).to eq([:double, 8, 3, 3, 24])
    end

    it "takes a byte size like SharedMemory" do
      ary = described_class.new(5)
      expect([ary.type, ary.length, ary.to_a]).to eq([:uchar, 5, [0] * 5])
    end

    it "is a SharedMemory and Enumerable" do
      ary = described_class.new(:int, 2)
      expect(ary).to be_a(ProcessShared::SharedMemory).and be_a(Enumerable)
      ary.put_int(4, 9)
      expect(ary[1]).to eq(9)
    end

    it "raises like SharedMemory for bad arguments" do
      expect { described_class.new(:int, 0) }.to raise_error(ArgumentError)
      expect { described_class.new(:nope) }.to raise_error(ArgumentError)
      expect { described_class.new("int") }.to raise_error(TypeError)
      [[:int, 2**62], [:int64, 2**61], [:char, 2**64]].each do |args|
        too_big = raise_error { |e| expect([Errno::ENOMEM, ArgumentError]).to include(e.class) }
        expect { described_class.new(*args) }.to too_big
      end
    end
  end

  describe "#[] and #[]=" do
    let(:ary) { described_class.new(:int, 4) }

    it "reads and writes elements; []= returns the value" do
      expect(ary[2] = 7).to eq(7)
      expect(ary.__send__(:[]=, 3, -8)).to eq(-8)
      expect(ary.to_a).to eq([0, 0, 7, -8])
      expect(ary.get_int(8)).to eq(7)
    end

    it "counts negative indexes from the end" do
      ary[-1] = 5
      ary[-4] = 6
      expect([ary[3], ary[0], ary[-1], ary[-4]]).to eq([5, 6, 5, 6])
    end

    it "raises IndexError out of range" do
      [4, -5, 2**64, -2**64, 2**200].each do |i|
        expect { ary[i] }.to raise_error(IndexError)
        expect { ary[i] = 1 }.to raise_error(IndexError)
      end
    end

    it "raises TypeError for non-Integer indexes" do
      ["0", 0.0, nil, :a, 0..1].each do |i|
        expect { ary[i] }.to raise_error(TypeError)
        expect { ary[i] = 1 }.to raise_error(TypeError)
      end
    end

    it "checks values against the element type" do
      expect { ary[0] = 2**31 }.to raise_error(RangeError)
      expect { ary[0] = "1" }.to raise_error(TypeError)
      expect { ary[0] = 1.5 }.to raise_error(TypeError)
      expect(ary[0]).to eq(0)
    end

    it "dispatches on every element type" do
      { char: -128, uchar: 255, short: -3, ushort: 65_535, uint: 2**32 - 1, long: -2**63, ulong: 2**64 - 1,
        int8: -1, uint16: 9, int64: 2**62, uint64: 2**64 - 1, size_t: 12, pointer: 2**48, float: 0.5,
        double: -2.25 }.each do |type, v|
        a = described_class.new(type, 3)
        a[1] = v
        zero = v.is_a?(Float) ? 0.0 : 0
        expect([a[1], a.to_a]).to eq([v, [zero, v, zero]]), type.inspect
      end
      floats = described_class.new(:float, 1)
      floats[0] = 0.1
      expect(floats[0]).to eq([0.1].pack("f").unpack1("f"))
      expect { floats[0] = 1e39 }.to raise_error(RangeError)
    end
  end

  describe "enumeration" do
    let(:ary) { described_class.new(:int, 5).tap { |a| 5.times { |i| a[i] = i * 10 } } }

    it "each yields elements in order and returns self" do
      seen = []
      expect(ary.each { |v| seen << v }).to equal(ary)
      expect(seen).to eq([0, 10, 20, 30, 40])
    end

    it "each without a block returns a sized Enumerator" do
      e = ary.each
      expect(e).to be_a(Enumerator)
      expect(e.size).to eq(5)
      expect(e.next).to eq(0)
      expect(e.to_a).to eq([0, 10, 20, 30, 40])
    end

    it "supports each_with_index, to_a and Enumerable methods" do
      expect(ary.each_with_index.to_a).to eq([[0, 0], [10, 1], [20, 2], [30, 3], [40, 4]])
      expect(ary.to_a).to eq([0, 10, 20, 30, 40])
      expect(ary.map { |v| v + 1 }).to eq([1, 11, 21, 31, 41])
      expect(ary.sum).to eq(100)
      expect(ary.include?(30)).to be(true)
      expect(ary.include?(31)).to be(false)
      expect(ary.select(&:positive?)).to eq([10, 20, 30, 40])
      expect([ary.min, ary.max, ary.first, ary.first(2)]).to eq([0, 40, 0, [0, 10]])
      expect(ary.sort.reverse).to eq([40, 30, 20, 10, 0])
      expect(ary.count).to eq(5)
      expect(ary.count(10)).to eq(1)
      expect(ary.count(&:zero?)).to eq(1)
      expect(ary.length).to eq(5)
    end

    it "still has the array accessors" do
      expect(ary.read_array_of_int(5)).to eq(ary.to_a)
      ary.write_array_of_int([9, 8])
      expect(ary.first(3)).to eq([9, 8, 20])
    end
  end

  describe "across fork" do
    it "a child's writes are seen by the parent" do
      ary = described_class.new(:int64, 4)
      pid = fork_child do
        ary[0] = 1
        ary[-1] = -2**63
      end
      wait_child(pid)
      expect(ary.to_a).to eq([1, 0, 0, -2**63])
    end

    it "several children each fill their own element" do
      ary = described_class.new(:uint32, 8)
      pids = 8.times.map { |i| fork_child { ary[i] = Process.pid } }
      wait_children(pids)
      expect(ary.to_a).to eq(pids)
    end

    it "the parent's writes are seen by a running child" do
      ary = described_class.new(:double, 2)
      h = handshake
      pid = fork_child do
        h.signal
        sleep 0.001 until ary[1].positive?
        exit!(ary.to_a == [1.5, 2.5] ? 0 : 1)
      end
      h.wait
      ary[0] = 1.5
      ary[1] = 2.5
      wait_child(pid)
    end
  end

  describe "#close" do
    it "makes element access raise ClosedError" do
      ary = described_class.new(:int, 2)
      ary.close
      expect(ary.closed?).to be(true)
      expect(ary.length).to eq(2)
      [-> { ary[0] }, -> { ary[0] = 1 }, -> { ary.to_a }, -> { ary.each(&:itself) }, -> { ary.map(&:to_s) }].each do |c|
        expect(&c).to raise_error(ProcessShared::ClosedError)
      end
    end

    it "works with .open" do
      kept = nil
      sum = described_class.open(:int, 3) do |a|
        kept = a
        a[0] = 2
        a[2] = 3
        a.sum
      end
      expect(sum).to eq(5)
      expect(kept).to be_closed
    end
  end

  it "inspects as a SharedArray with its type, count and size" do
    expect(described_class.new(:uint16, 3).inspect).to match(/SharedArray.*type=:uint16.*count=3.*size=6/)
  end
end
