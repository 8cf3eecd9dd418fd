// shardline-client 0.1.0 + flatbuffers ^25.9.23, bundled for browsers.
// Generated from clients/typescript by `npm run build:web`; do not edit.
var __defProp = Object.defineProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};

// src/backoff.ts
var RECONNECT_DEFAULTS = {
  baseDelayMs: 200,
  maxDelayMs: 1e4,
  maxAttempts: 20
};
function backoffDelayMs(attempt, opts, random = Math.random) {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

// node_modules/flatbuffers/mjs/constants.js
var SIZEOF_SHORT = 2;
var SIZEOF_INT = 4;
var FILE_IDENTIFIER_LENGTH = 4;
var SIZE_PREFIX_LENGTH = 4;

// node_modules/flatbuffers/mjs/utils.js
var int32 = new Int32Array(2);
var float32 = new Float32Array(int32.buffer);
var float64 = new Float64Array(int32.buffer);
var isLittleEndian = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1;

// node_modules/flatbuffers/mjs/encoding.js
var Encoding;
(function(Encoding2) {
  Encoding2[Encoding2["UTF8_BYTES"] = 1] = "UTF8_BYTES";
  Encoding2[Encoding2["UTF16_STRING"] = 2] = "UTF16_STRING";
})(Encoding || (Encoding = {}));

// node_modules/flatbuffers/mjs/byte-buffer.js
var ByteBuffer = class _ByteBuffer {
  /**
   * Create a new ByteBuffer with a given array of bytes (`Uint8Array`)
   */
  constructor(bytes_) {
    this.bytes_ = bytes_;
    this.position_ = 0;
    this.text_decoder_ = new TextDecoder();
  }
  /**
   * Create and allocate a new ByteBuffer with a given size.
   */
  static allocate(byte_size) {
    return new _ByteBuffer(new Uint8Array(byte_size));
  }
  clear() {
    this.position_ = 0;
  }
  /**
   * Get the underlying `Uint8Array`.
   */
  bytes() {
    return this.bytes_;
  }
  /**
   * Get the buffer's position.
   */
  position() {
    return this.position_;
  }
  /**
   * Set the buffer's position.
   */
  setPosition(position) {
    this.position_ = position;
  }
  /**
   * Get the buffer's capacity.
   */
  capacity() {
    return this.bytes_.length;
  }
  readInt8(offset) {
    return this.readUint8(offset) << 24 >> 24;
  }
  readUint8(offset) {
    return this.bytes_[offset];
  }
  readInt16(offset) {
    return this.readUint16(offset) << 16 >> 16;
  }
  readUint16(offset) {
    return this.bytes_[offset] | this.bytes_[offset + 1] << 8;
  }
  readInt32(offset) {
    return this.bytes_[offset] | this.bytes_[offset + 1] << 8 | this.bytes_[offset + 2] << 16 | this.bytes_[offset + 3] << 24;
  }
  readUint32(offset) {
    return this.readInt32(offset) >>> 0;
  }
  readInt64(offset) {
    return BigInt.asIntN(64, BigInt(this.readUint32(offset)) + (BigInt(this.readUint32(offset + 4)) << BigInt(32)));
  }
  readUint64(offset) {
    return BigInt.asUintN(64, BigInt(this.readUint32(offset)) + (BigInt(this.readUint32(offset + 4)) << BigInt(32)));
  }
  readFloat32(offset) {
    int32[0] = this.readInt32(offset);
    return float32[0];
  }
  readFloat64(offset) {
    int32[isLittleEndian ? 0 : 1] = this.readInt32(offset);
    int32[isLittleEndian ? 1 : 0] = this.readInt32(offset + 4);
    return float64[0];
  }
  writeInt8(offset, value) {
    this.bytes_[offset] = value;
  }
  writeUint8(offset, value) {
    this.bytes_[offset] = value;
  }
  writeInt16(offset, value) {
    this.bytes_[offset] = value;
    this.bytes_[offset + 1] = value >> 8;
  }
  writeUint16(offset, value) {
    this.bytes_[offset] = value;
    this.bytes_[offset + 1] = value >> 8;
  }
  writeInt32(offset, value) {
    this.bytes_[offset] = value;
    this.bytes_[offset + 1] = value >> 8;
    this.bytes_[offset + 2] = value >> 16;
    this.bytes_[offset + 3] = value >> 24;
  }
  writeUint32(offset, value) {
    this.bytes_[offset] = value;
    this.bytes_[offset + 1] = value >> 8;
    this.bytes_[offset + 2] = value >> 16;
    this.bytes_[offset + 3] = value >> 24;
  }
  writeInt64(offset, value) {
    this.writeInt32(offset, Number(BigInt.asIntN(32, value)));
    this.writeInt32(offset + 4, Number(BigInt.asIntN(32, value >> BigInt(32))));
  }
  writeUint64(offset, value) {
    this.writeUint32(offset, Number(BigInt.asUintN(32, value)));
    this.writeUint32(offset + 4, Number(BigInt.asUintN(32, value >> BigInt(32))));
  }
  writeFloat32(offset, value) {
    float32[0] = value;
    this.writeInt32(offset, int32[0]);
  }
  writeFloat64(offset, value) {
    float64[0] = value;
    this.writeInt32(offset, int32[isLittleEndian ? 0 : 1]);
    this.writeInt32(offset + 4, int32[isLittleEndian ? 1 : 0]);
  }
  /**
   * Return the file identifier.   Behavior is undefined for FlatBuffers whose
   * schema does not include a file_identifier (likely points at padding or the
   * start of a the root vtable).
   */
  getBufferIdentifier() {
    if (this.bytes_.length < this.position_ + SIZEOF_INT + FILE_IDENTIFIER_LENGTH) {
      throw new Error("FlatBuffers: ByteBuffer is too short to contain an identifier.");
    }
    let result = "";
    for (let i = 0; i < FILE_IDENTIFIER_LENGTH; i++) {
      result += String.fromCharCode(this.readInt8(this.position_ + SIZEOF_INT + i));
    }
    return result;
  }
  /**
   * Look up a field in the vtable, return an offset into the object, or 0 if the
   * field is not present.
   */
  __offset(bb_pos, vtable_offset) {
    const vtable = bb_pos - this.readInt32(bb_pos);
    return vtable_offset < this.readInt16(vtable) ? this.readInt16(vtable + vtable_offset) : 0;
  }
  /**
   * Initialize any Table-derived type to point to the union at the given offset.
   */
  __union(t, offset) {
    t.bb_pos = offset + this.readInt32(offset);
    t.bb = this;
    return t;
  }
  /**
   * Create a JavaScript string from UTF-8 data stored inside the FlatBuffer.
   * This allocates a new string and converts to wide chars upon each access.
   *
   * To avoid the conversion to string, pass Encoding.UTF8_BYTES as the
   * "optionalEncoding" argument. This is useful for avoiding conversion when
   * the data will just be packaged back up in another FlatBuffer later on.
   *
   * @param offset
   * @param opt_encoding Defaults to UTF16_STRING
   */
  __string(offset, opt_encoding) {
    offset += this.readInt32(offset);
    const length = this.readInt32(offset);
    offset += SIZEOF_INT;
    const utf8bytes = this.bytes_.subarray(offset, offset + length);
    if (opt_encoding === Encoding.UTF8_BYTES)
      return utf8bytes;
    else
      return this.text_decoder_.decode(utf8bytes);
  }
  /**
   * Handle unions that can contain string as its member, if a Table-derived type then initialize it,
   * if a string then return a new one
   *
   * WARNING: strings are immutable in JS so we can't change the string that the user gave us, this
   * makes the behaviour of __union_with_string different compared to __union
   */
  __union_with_string(o, offset) {
    if (typeof o === "string") {
      return this.__string(offset);
    }
    return this.__union(o, offset);
  }
  /**
   * Retrieve the relative offset stored at "offset"
   */
  __indirect(offset) {
    return offset + this.readInt32(offset);
  }
  /**
   * Get the start of data of a vector whose offset is stored at "offset" in this object.
   */
  __vector(offset) {
    return offset + this.readInt32(offset) + SIZEOF_INT;
  }
  /**
   * Get the length of a vector whose offset is stored at "offset" in this object.
   */
  __vector_len(offset) {
    return this.readInt32(offset + this.readInt32(offset));
  }
  __has_identifier(ident) {
    if (ident.length != FILE_IDENTIFIER_LENGTH) {
      throw new Error("FlatBuffers: file identifier must be length " + FILE_IDENTIFIER_LENGTH);
    }
    for (let i = 0; i < FILE_IDENTIFIER_LENGTH; i++) {
      if (ident.charCodeAt(i) != this.readInt8(this.position() + SIZEOF_INT + i)) {
        return false;
      }
    }
    return true;
  }
  /**
   * A helper function for generating list for obj api
   */
  createScalarList(listAccessor, listLength) {
    const ret = [];
    for (let i = 0; i < listLength; ++i) {
      const val = listAccessor(i);
      if (val !== null) {
        ret.push(val);
      }
    }
    return ret;
  }
  /**
   * A helper function for generating list for obj api
   * @param listAccessor function that accepts an index and return data at that index
   * @param listLength listLength
   * @param res result list
   */
  createObjList(listAccessor, listLength) {
    const ret = [];
    for (let i = 0; i < listLength; ++i) {
      const val = listAccessor(i);
      if (val !== null) {
        ret.push(val.unpack());
      }
    }
    return ret;
  }
};

// node_modules/flatbuffers/mjs/builder.js
var Builder = class _Builder {
  /**
   * Create a FlatBufferBuilder.
   */
  constructor(opt_initial_size) {
    this.minalign = 1;
    this.vtable = null;
    this.vtable_in_use = 0;
    this.isNested = false;
    this.object_start = 0;
    this.vtables = [];
    this.vector_num_elems = 0;
    this.force_defaults = false;
    this.string_maps = null;
    this.text_encoder = new TextEncoder();
    let initial_size;
    if (!opt_initial_size) {
      initial_size = 1024;
    } else {
      initial_size = opt_initial_size;
    }
    this.bb = ByteBuffer.allocate(initial_size);
    this.space = initial_size;
  }
  clear() {
    this.bb.clear();
    this.space = this.bb.capacity();
    this.minalign = 1;
    this.vtable = null;
    this.vtable_in_use = 0;
    this.isNested = false;
    this.object_start = 0;
    this.vtables = [];
    this.vector_num_elems = 0;
    this.force_defaults = false;
    this.string_maps = null;
  }
  /**
   * In order to save space, fields that are set to their default value
   * don't get serialized into the buffer. Forcing defaults provides a
   * way to manually disable this optimization.
   *
   * @param forceDefaults true always serializes default values
   */
  forceDefaults(forceDefaults) {
    this.force_defaults = forceDefaults;
  }
  /**
   * Get the ByteBuffer representing the FlatBuffer. Only call this after you've
   * called finish(). The actual data starts at the ByteBuffer's current position,
   * not necessarily at 0.
   */
  dataBuffer() {
    return this.bb;
  }
  /**
   * Get the bytes representing the FlatBuffer. Only call this after you've
   * called finish().
   */
  asUint8Array() {
    return this.bb.bytes().subarray(this.bb.position(), this.bb.position() + this.offset());
  }
  /**
   * Prepare to write an element of `size` after `additional_bytes` have been
   * written, e.g. if you write a string, you need to align such the int length
   * field is aligned to 4 bytes, and the string data follows it directly. If all
   * you need to do is alignment, `additional_bytes` will be 0.
   *
   * @param size This is the of the new element to write
   * @param additional_bytes The padding size
   */
  prep(size, additional_bytes) {
    if (size > this.minalign) {
      this.minalign = size;
    }
    const align_size = ~(this.bb.capacity() - this.space + additional_bytes) + 1 & size - 1;
    while (this.space < align_size + size + additional_bytes) {
      const old_buf_size = this.bb.capacity();
      this.bb = _Builder.growByteBuffer(this.bb);
      this.space += this.bb.capacity() - old_buf_size;
    }
    this.pad(align_size);
  }
  pad(byte_size) {
    for (let i = 0; i < byte_size; i++) {
      this.bb.writeInt8(--this.space, 0);
    }
  }
  writeInt8(value) {
    this.bb.writeInt8(this.space -= 1, value);
  }
  writeInt16(value) {
    this.bb.writeInt16(this.space -= 2, value);
  }
  writeInt32(value) {
    this.bb.writeInt32(this.space -= 4, value);
  }
  writeInt64(value) {
    this.bb.writeInt64(this.space -= 8, value);
  }
  writeFloat32(value) {
    this.bb.writeFloat32(this.space -= 4, value);
  }
  writeFloat64(value) {
    this.bb.writeFloat64(this.space -= 8, value);
  }
  /**
   * Add an `int8` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `int8` to add the buffer.
   */
  addInt8(value) {
    this.prep(1, 0);
    this.writeInt8(value);
  }
  /**
   * Add an `int16` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `int16` to add the buffer.
   */
  addInt16(value) {
    this.prep(2, 0);
    this.writeInt16(value);
  }
  /**
   * Add an `int32` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `int32` to add the buffer.
   */
  addInt32(value) {
    this.prep(4, 0);
    this.writeInt32(value);
  }
  /**
   * Add an `int64` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `int64` to add the buffer.
   */
  addInt64(value) {
    this.prep(8, 0);
    this.writeInt64(value);
  }
  /**
   * Add a `float32` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `float32` to add the buffer.
   */
  addFloat32(value) {
    this.prep(4, 0);
    this.writeFloat32(value);
  }
  /**
   * Add a `float64` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `float64` to add the buffer.
   */
  addFloat64(value) {
    this.prep(8, 0);
    this.writeFloat64(value);
  }
  addFieldInt8(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addInt8(value);
      this.slot(voffset);
    }
  }
  addFieldInt16(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addInt16(value);
      this.slot(voffset);
    }
  }
  addFieldInt32(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addInt32(value);
      this.slot(voffset);
    }
  }
  addFieldInt64(voffset, value, defaultValue) {
    if (this.force_defaults || value !== defaultValue) {
      this.addInt64(value);
      this.slot(voffset);
    }
  }
  addFieldFloat32(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addFloat32(value);
      this.slot(voffset);
    }
  }
  addFieldFloat64(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addFloat64(value);
      this.slot(voffset);
    }
  }
  addFieldOffset(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addOffset(value);
      this.slot(voffset);
    }
  }
  /**
   * Structs are stored inline, so nothing additional is being added. `d` is always 0.
   */
  addFieldStruct(voffset, value, defaultValue) {
    if (value != defaultValue) {
      this.nested(value);
      this.slot(voffset);
    }
  }
  /**
   * Structures are always stored inline, they need to be created right
   * where they're used.  You'll get this assertion failure if you
   * created it elsewhere.
   */
  nested(obj) {
    if (obj != this.offset()) {
      throw new TypeError("FlatBuffers: struct must be serialized inline.");
    }
  }
  /**
   * Should not be creating any other object, string or vector
   * while an object is being constructed
   */
  notNested() {
    if (this.isNested) {
      throw new TypeError("FlatBuffers: object serialization must not be nested.");
    }
  }
  /**
   * Set the current vtable at `voffset` to the current location in the buffer.
   */
  slot(voffset) {
    if (this.vtable !== null)
      this.vtable[voffset] = this.offset();
  }
  /**
   * @returns Offset relative to the end of the buffer.
   */
  offset() {
    return this.bb.capacity() - this.space;
  }
  /**
   * Doubles the size of the backing ByteBuffer and copies the old data towards
   * the end of the new buffer (since we build the buffer backwards).
   *
   * @param bb The current buffer with the existing data
   * @returns A new byte buffer with the old data copied
   * to it. The data is located at the end of the buffer.
   *
   * uint8Array.set() formally takes {Array<number>|ArrayBufferView}, so to pass
   * it a uint8Array we need to suppress the type check:
   * @suppress {checkTypes}
   */
  static growByteBuffer(bb) {
    const old_buf_size = bb.capacity();
    if (old_buf_size & 3221225472) {
      throw new Error("FlatBuffers: cannot grow buffer beyond 2 gigabytes.");
    }
    const new_buf_size = old_buf_size << 1;
    const nbb = ByteBuffer.allocate(new_buf_size);
    nbb.setPosition(new_buf_size - old_buf_size);
    nbb.bytes().set(bb.bytes(), new_buf_size - old_buf_size);
    return nbb;
  }
  /**
   * Adds on offset, relative to where it will be written.
   *
   * @param offset The offset to add.
   */
  addOffset(offset) {
    this.prep(SIZEOF_INT, 0);
    this.writeInt32(this.offset() - offset + SIZEOF_INT);
  }
  /**
   * Start encoding a new object in the buffer.  Users will not usually need to
   * call this directly. The FlatBuffers compiler will generate helper methods
   * that call this method internally.
   */
  startObject(numfields) {
    this.notNested();
    if (this.vtable == null) {
      this.vtable = [];
    }
    this.vtable_in_use = numfields;
    for (let i = 0; i < numfields; i++) {
      this.vtable[i] = 0;
    }
    this.isNested = true;
    this.object_start = this.offset();
  }
  /**
   * Finish off writing the object that is under construction.
   *
   * @returns The offset to the object inside `dataBuffer`
   */
  endObject() {
    if (this.vtable == null || !this.isNested) {
      throw new Error("FlatBuffers: endObject called without startObject");
    }
    this.addInt32(0);
    const vtableloc = this.offset();
    let i = this.vtable_in_use - 1;
    for (; i >= 0 && this.vtable[i] == 0; i--) {
    }
    const trimmed_size = i + 1;
    for (; i >= 0; i--) {
      this.addInt16(this.vtable[i] != 0 ? vtableloc - this.vtable[i] : 0);
    }
    const standard_fields = 2;
    this.addInt16(vtableloc - this.object_start);
    const len = (trimmed_size + standard_fields) * SIZEOF_SHORT;
    this.addInt16(len);
    let existing_vtable = 0;
    const vt1 = this.space;
    outer_loop: for (i = 0; i < this.vtables.length; i++) {
      const vt2 = this.bb.capacity() - this.vtables[i];
      if (len == this.bb.readInt16(vt2)) {
        for (let j = SIZEOF_SHORT; j < len; j += SIZEOF_SHORT) {
          if (this.bb.readInt16(vt1 + j) != this.bb.readInt16(vt2 + j)) {
            continue outer_loop;
          }
        }
        existing_vtable = this.vtables[i];
        break;
      }
    }
    if (existing_vtable) {
      this.space = this.bb.capacity() - vtableloc;
      this.bb.writeInt32(this.space, existing_vtable - vtableloc);
    } else {
      this.vtables.push(this.offset());
      this.bb.writeInt32(this.bb.capacity() - vtableloc, this.offset() - vtableloc);
    }
    this.isNested = false;
    return vtableloc;
  }
  /**
   * Finalize a buffer, poiting to the given `root_table`.
   */
  finish(root_table, opt_file_identifier, opt_size_prefix) {
    const size_prefix = opt_size_prefix ? SIZE_PREFIX_LENGTH : 0;
    if (opt_file_identifier) {
      const file_identifier = opt_file_identifier;
      this.prep(this.minalign, SIZEOF_INT + FILE_IDENTIFIER_LENGTH + size_prefix);
      if (file_identifier.length != FILE_IDENTIFIER_LENGTH) {
        throw new TypeError("FlatBuffers: file identifier must be length " + FILE_IDENTIFIER_LENGTH);
      }
      for (let i = FILE_IDENTIFIER_LENGTH - 1; i >= 0; i--) {
        this.writeInt8(file_identifier.charCodeAt(i));
      }
    }
    this.prep(this.minalign, SIZEOF_INT + size_prefix);
    this.addOffset(root_table);
    if (size_prefix) {
      this.addInt32(this.bb.capacity() - this.space);
    }
    this.bb.setPosition(this.space);
  }
  /**
   * Finalize a size prefixed buffer, pointing to the given `root_table`.
   */
  finishSizePrefixed(root_table, opt_file_identifier) {
    this.finish(root_table, opt_file_identifier, true);
  }
  /**
   * This checks a required field has been set in a given table that has
   * just been constructed.
   */
  requiredField(table, field) {
    const table_start = this.bb.capacity() - table;
    const vtable_start = table_start - this.bb.readInt32(table_start);
    const ok = field < this.bb.readInt16(vtable_start) && this.bb.readInt16(vtable_start + field) != 0;
    if (!ok) {
      throw new TypeError("FlatBuffers: field " + field + " must be set");
    }
  }
  /**
   * Start a new array/vector of objects.  Users usually will not call
   * this directly. The FlatBuffers compiler will create a start/end
   * method for vector types in generated code.
   *
   * @param elem_size The size of each element in the array
   * @param num_elems The number of elements in the array
   * @param alignment The alignment of the array
   */
  startVector(elem_size, num_elems, alignment) {
    this.notNested();
    this.vector_num_elems = num_elems;
    this.prep(SIZEOF_INT, elem_size * num_elems);
    this.prep(alignment, elem_size * num_elems);
  }
  /**
   * Finish off the creation of an array and all its elements. The array must be
   * created with `startVector`.
   *
   * @returns The offset at which the newly created array
   * starts.
   */
  endVector() {
    this.writeInt32(this.vector_num_elems);
    return this.offset();
  }
  /**
   * Encode the string `s` in the buffer using UTF-8. If the string passed has
   * already been seen, we return the offset of the already written string
   *
   * @param s The string to encode
   * @return The offset in the buffer where the encoded string starts
   */
  createSharedString(s) {
    if (!s) {
      return 0;
    }
    if (!this.string_maps) {
      this.string_maps = /* @__PURE__ */ new Map();
    }
    if (this.string_maps.has(s)) {
      return this.string_maps.get(s);
    }
    const offset = this.createString(s);
    this.string_maps.set(s, offset);
    return offset;
  }
  /**
   * Encode the string `s` in the buffer using UTF-8. If a Uint8Array is passed
   * instead of a string, it is assumed to contain valid UTF-8 encoded data.
   *
   * @param s The string to encode
   * @return The offset in the buffer where the encoded string starts
   */
  createString(s) {
    if (s === null || s === void 0) {
      return 0;
    }
    let utf8;
    if (s instanceof Uint8Array) {
      utf8 = s;
    } else {
      utf8 = this.text_encoder.encode(s);
    }
    this.addInt8(0);
    this.startVector(1, utf8.length, 1);
    this.bb.setPosition(this.space -= utf8.length);
    this.bb.bytes().set(utf8, this.space);
    return this.endVector();
  }
  /**
   * Create a byte vector.
   *
   * @param v The bytes to add
   * @returns The offset in the buffer where the byte vector starts
   */
  createByteVector(v) {
    if (v === null || v === void 0) {
      return 0;
    }
    this.startVector(1, v.length, 1);
    this.bb.setPosition(this.space -= v.length);
    this.bb.bytes().set(v, this.space);
    return this.endVector();
  }
  /**
   * A helper function to pack an object
   *
   * @returns offset of obj
   */
  createObjectOffset(obj) {
    if (obj === null) {
      return 0;
    }
    if (typeof obj === "string") {
      return this.createString(obj);
    } else {
      return obj.pack(this);
    }
  }
  /**
   * A helper function to pack a list of object
   *
   * @returns list of offsets of each non null object
   */
  createObjectOffsetList(list) {
    const ret = [];
    for (let i = 0; i < list.length; ++i) {
      const val = list[i];
      if (val !== null) {
        ret.push(this.createObjectOffset(val));
      } else {
        throw new TypeError("FlatBuffers: Argument for createObjectOffsetList cannot contain null.");
      }
    }
    return ret;
  }
  createStructOffsetList(list, startFunc) {
    startFunc(this, list.length);
    this.createObjectOffsetList(list.slice().reverse());
    return this.endVector();
  }
};

// src/generated/shardline/protocol/ack.ts
var Ack = class _Ack {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsAck(bb, obj) {
    return (obj || new _Ack()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsAck(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Ack()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  tick() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startAck(builder) {
    builder.startObject(1);
  }
  static addTick(builder, tick) {
    builder.addFieldInt64(0, tick, BigInt("0"));
  }
  static endAck(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createAck(builder, tick) {
    _Ack.startAck(builder);
    _Ack.addTick(builder, tick);
    return _Ack.endAck(builder);
  }
};

// src/generated/shardline/protocol/hello.ts
var Hello = class _Hello {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsHello(bb, obj) {
    return (obj || new _Hello()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsHello(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Hello()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  protocolVersion() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 1;
  }
  playerName(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  resumeToken(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  ticket(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startHello(builder) {
    builder.startObject(4);
  }
  static addProtocolVersion(builder, protocolVersion) {
    builder.addFieldInt16(0, protocolVersion, 1);
  }
  static addPlayerName(builder, playerNameOffset) {
    builder.addFieldOffset(1, playerNameOffset, 0);
  }
  static addResumeToken(builder, resumeTokenOffset) {
    builder.addFieldOffset(2, resumeTokenOffset, 0);
  }
  static addTicket(builder, ticketOffset) {
    builder.addFieldOffset(3, ticketOffset, 0);
  }
  static endHello(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createHello(builder, protocolVersion, playerNameOffset, resumeTokenOffset, ticketOffset) {
    _Hello.startHello(builder);
    _Hello.addProtocolVersion(builder, protocolVersion);
    _Hello.addPlayerName(builder, playerNameOffset);
    _Hello.addResumeToken(builder, resumeTokenOffset);
    _Hello.addTicket(builder, ticketOffset);
    return _Hello.endHello(builder);
  }
};

// src/generated/shardline/protocol/input.ts
var Input = class _Input {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsInput(bb, obj) {
    return (obj || new _Input()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsInput(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Input()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  seq() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  moveX() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readFloat32(this.bb_pos + offset) : 0;
  }
  moveY() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readFloat32(this.bb_pos + offset) : 0;
  }
  buttons() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  /**
   * V2: the newest StateDelta.tick this client has applied (0 = none), as
   * Ack.tick; saves a separate Ack when the client sends input every tick.
   */
  ackTick() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startInput(builder) {
    builder.startObject(5);
  }
  static addSeq(builder, seq) {
    builder.addFieldInt32(0, seq, 0);
  }
  static addMoveX(builder, moveX) {
    builder.addFieldFloat32(1, moveX, 0);
  }
  static addMoveY(builder, moveY) {
    builder.addFieldFloat32(2, moveY, 0);
  }
  static addButtons(builder, buttons) {
    builder.addFieldInt32(3, buttons, 0);
  }
  static addAckTick(builder, ackTick) {
    builder.addFieldInt64(4, ackTick, BigInt("0"));
  }
  static endInput(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createInput(builder, seq, moveX, moveY, buttons, ackTick) {
    _Input.startInput(builder);
    _Input.addSeq(builder, seq);
    _Input.addMoveX(builder, moveX);
    _Input.addMoveY(builder, moveY);
    _Input.addButtons(builder, buttons);
    _Input.addAckTick(builder, ackTick);
    return _Input.endInput(builder);
  }
};

// src/generated/shardline/protocol/join.ts
var Join = class _Join {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsJoin(bb, obj) {
    return (obj || new _Join()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsJoin(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Join()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  instanceId(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  createIfMissing() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? !!this.bb.readInt8(this.bb_pos + offset) : true;
  }
  static startJoin(builder) {
    builder.startObject(2);
  }
  static addInstanceId(builder, instanceIdOffset) {
    builder.addFieldOffset(0, instanceIdOffset, 0);
  }
  static addCreateIfMissing(builder, createIfMissing) {
    builder.addFieldInt8(1, +createIfMissing, 1);
  }
  static endJoin(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createJoin(builder, instanceIdOffset, createIfMissing) {
    _Join.startJoin(builder);
    _Join.addInstanceId(builder, instanceIdOffset);
    _Join.addCreateIfMissing(builder, createIfMissing);
    return _Join.endJoin(builder);
  }
};

// src/generated/shardline/protocol/leave.ts
var Leave = class _Leave {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsLeave(bb, obj) {
    return (obj || new _Leave()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsLeave(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Leave()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static startLeave(builder) {
    builder.startObject(0);
  }
  static endLeave(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createLeave(builder) {
    _Leave.startLeave(builder);
    return _Leave.endLeave(builder);
  }
};

// src/generated/shardline/protocol/message.ts
var Message = class _Message {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsMessage(bb, obj) {
    return (obj || new _Message()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsMessage(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Message()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  kind() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  body(index) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint8(this.bb.__vector(this.bb_pos + offset) + index) : 0;
  }
  bodyLength() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  bodyArray() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + offset), this.bb.__vector_len(this.bb_pos + offset)) : null;
  }
  static startMessage(builder) {
    builder.startObject(2);
  }
  static addKind(builder, kind) {
    builder.addFieldInt16(0, kind, 0);
  }
  static addBody(builder, bodyOffset) {
    builder.addFieldOffset(1, bodyOffset, 0);
  }
  static createBodyVector(builder, data) {
    builder.startVector(1, data.length, 1);
    for (let i = data.length - 1; i >= 0; i--) {
      builder.addInt8(data[i]);
    }
    return builder.endVector();
  }
  static startBodyVector(builder, numElems) {
    builder.startVector(1, numElems, 1);
  }
  static endMessage(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createMessage(builder, kind, bodyOffset) {
    _Message.startMessage(builder);
    _Message.addKind(builder, kind);
    _Message.addBody(builder, bodyOffset);
    return _Message.endMessage(builder);
  }
};

// src/generated/shardline/protocol/ping.ts
var Ping = class _Ping {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsPing(bb, obj) {
    return (obj || new _Ping()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsPing(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Ping()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  clientTime() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readFloat64(this.bb_pos + offset) : 0;
  }
  static startPing(builder) {
    builder.startObject(1);
  }
  static addClientTime(builder, clientTime) {
    builder.addFieldFloat64(0, clientTime, 0);
  }
  static endPing(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createPing(builder, clientTime) {
    _Ping.startPing(builder);
    _Ping.addClientTime(builder, clientTime);
    return _Ping.endPing(builder);
  }
};

// src/generated/shardline/protocol/client-body.ts
var ClientBody = /* @__PURE__ */ ((ClientBody2) => {
  ClientBody2[ClientBody2["NONE"] = 0] = "NONE";
  ClientBody2[ClientBody2["Hello"] = 1] = "Hello";
  ClientBody2[ClientBody2["Join"] = 2] = "Join";
  ClientBody2[ClientBody2["Leave"] = 3] = "Leave";
  ClientBody2[ClientBody2["Input"] = 4] = "Input";
  ClientBody2[ClientBody2["Ping"] = 5] = "Ping";
  ClientBody2[ClientBody2["Ack"] = 6] = "Ack";
  ClientBody2[ClientBody2["Message"] = 7] = "Message";
  return ClientBody2;
})(ClientBody || {});

// src/generated/shardline/protocol/client-message.ts
var ClientMessage = class _ClientMessage {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsClientMessage(bb, obj) {
    return (obj || new _ClientMessage()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsClientMessage(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _ClientMessage()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  bodyType() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* NONE */;
  }
  body(obj) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__union(obj, this.bb_pos + offset) : null;
  }
  static startClientMessage(builder) {
    builder.startObject(2);
  }
  static addBodyType(builder, bodyType) {
    builder.addFieldInt8(0, bodyType, 0 /* NONE */);
  }
  static addBody(builder, bodyOffset) {
    builder.addFieldOffset(1, bodyOffset, 0);
  }
  static endClientMessage(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static finishClientMessageBuffer(builder, offset) {
    builder.finish(offset);
  }
  static finishSizePrefixedClientMessageBuffer(builder, offset) {
    builder.finish(offset, void 0, true);
  }
  static createClientMessage(builder, bodyType, bodyOffset) {
    _ClientMessage.startClientMessage(builder);
    _ClientMessage.addBodyType(builder, bodyType);
    _ClientMessage.addBody(builder, bodyOffset);
    return _ClientMessage.endClientMessage(builder);
  }
};

// src/generated/shardline/protocol/entity-pose.ts
var EntityPose = class {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  z() {
    return this.bb.readFloat32(this.bb_pos);
  }
  facing() {
    return this.bb.readFloat32(this.bb_pos + 4);
  }
  static sizeOf() {
    return 8;
  }
  static createEntityPose(builder, z, facing) {
    builder.prep(4, 8);
    builder.writeFloat32(facing);
    builder.writeFloat32(z);
    return builder.offset();
  }
};

// src/generated/shardline/protocol/entity-state.ts
var EntityState = class {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  id() {
    return this.bb.readUint32(this.bb_pos);
  }
  kind() {
    return this.bb.readUint16(this.bb_pos + 4);
  }
  flags() {
    return this.bb.readUint16(this.bb_pos + 6);
  }
  x() {
    return this.bb.readFloat32(this.bb_pos + 8);
  }
  y() {
    return this.bb.readFloat32(this.bb_pos + 12);
  }
  vx() {
    return this.bb.readFloat32(this.bb_pos + 16);
  }
  vy() {
    return this.bb.readFloat32(this.bb_pos + 20);
  }
  static sizeOf() {
    return 24;
  }
  static createEntityState(builder, id, kind, flags, x, y, vx, vy) {
    builder.prep(4, 24);
    builder.writeFloat32(vy);
    builder.writeFloat32(vx);
    builder.writeFloat32(y);
    builder.writeFloat32(x);
    builder.writeInt16(flags);
    builder.writeInt16(kind);
    builder.writeInt32(id);
    return builder.offset();
  }
};

// src/generated/shardline/protocol/error-code.ts
var ErrorCode = /* @__PURE__ */ ((ErrorCode2) => {
  ErrorCode2[ErrorCode2["None"] = 0] = "None";
  ErrorCode2[ErrorCode2["BadMessage"] = 1] = "BadMessage";
  ErrorCode2[ErrorCode2["OutOfOrder"] = 2] = "OutOfOrder";
  ErrorCode2[ErrorCode2["UnsupportedVersion"] = 3] = "UnsupportedVersion";
  ErrorCode2[ErrorCode2["BadInput"] = 4] = "BadInput";
  ErrorCode2[ErrorCode2["InvalidInstanceId"] = 5] = "InvalidInstanceId";
  ErrorCode2[ErrorCode2["InstanceFull"] = 10] = "InstanceFull";
  ErrorCode2[ErrorCode2["InstanceNotFound"] = 11] = "InstanceNotFound";
  ErrorCode2[ErrorCode2["ShardFull"] = 12] = "ShardFull";
  ErrorCode2[ErrorCode2["NotInInstance"] = 13] = "NotInInstance";
  ErrorCode2[ErrorCode2["AlreadyInInstance"] = 14] = "AlreadyInInstance";
  ErrorCode2[ErrorCode2["ResumeRefused"] = 20] = "ResumeRefused";
  ErrorCode2[ErrorCode2["TicketRequired"] = 21] = "TicketRequired";
  ErrorCode2[ErrorCode2["TicketInvalid"] = 22] = "TicketInvalid";
  ErrorCode2[ErrorCode2["TicketReplayed"] = 23] = "TicketReplayed";
  ErrorCode2[ErrorCode2["TicketWrongInstance"] = 24] = "TicketWrongInstance";
  ErrorCode2[ErrorCode2["ServerFull"] = 30] = "ServerFull";
  ErrorCode2[ErrorCode2["ShuttingDown"] = 31] = "ShuttingDown";
  ErrorCode2[ErrorCode2["WrongNode"] = 32] = "WrongNode";
  ErrorCode2[ErrorCode2["RateLimited"] = 33] = "RateLimited";
  ErrorCode2[ErrorCode2["Internal"] = 40] = "Internal";
  ErrorCode2[ErrorCode2["MessageTooLarge"] = 50] = "MessageTooLarge";
  ErrorCode2[ErrorCode2["MessageFlood"] = 51] = "MessageFlood";
  ErrorCode2[ErrorCode2["JoinRefused"] = 52] = "JoinRefused";
  return ErrorCode2;
})(ErrorCode || {});

// src/generated/shardline/protocol/error.ts
var Error2 = class _Error {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsError(bb, obj) {
    return (obj || new _Error()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsError(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Error()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  code() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0 /* None */;
  }
  message(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startError(builder) {
    builder.startObject(2);
  }
  static addCode(builder, code) {
    builder.addFieldInt16(0, code, 0 /* None */);
  }
  static addMessage(builder, messageOffset) {
    builder.addFieldOffset(1, messageOffset, 0);
  }
  static endError(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createError(builder, code, messageOffset) {
    _Error.startError(builder);
    _Error.addCode(builder, code);
    _Error.addMessage(builder, messageOffset);
    return _Error.endError(builder);
  }
};

// src/generated/shardline/protocol/game-event.ts
var GameEvent = class _GameEvent {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsGameEvent(bb, obj) {
    return (obj || new _GameEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsGameEvent(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _GameEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  tick() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  kind() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  body(index) {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint8(this.bb.__vector(this.bb_pos + offset) + index) : 0;
  }
  bodyLength() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  bodyArray() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + offset), this.bb.__vector_len(this.bb_pos + offset)) : null;
  }
  static startGameEvent(builder) {
    builder.startObject(3);
  }
  static addTick(builder, tick) {
    builder.addFieldInt64(0, tick, BigInt("0"));
  }
  static addKind(builder, kind) {
    builder.addFieldInt16(1, kind, 0);
  }
  static addBody(builder, bodyOffset) {
    builder.addFieldOffset(2, bodyOffset, 0);
  }
  static createBodyVector(builder, data) {
    builder.startVector(1, data.length, 1);
    for (let i = data.length - 1; i >= 0; i--) {
      builder.addInt8(data[i]);
    }
    return builder.endVector();
  }
  static startBodyVector(builder, numElems) {
    builder.startVector(1, numElems, 1);
  }
  static endGameEvent(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createGameEvent(builder, tick, kind, bodyOffset) {
    _GameEvent.startGameEvent(builder);
    _GameEvent.addTick(builder, tick);
    _GameEvent.addKind(builder, kind);
    _GameEvent.addBody(builder, bodyOffset);
    return _GameEvent.endGameEvent(builder);
  }
};

// src/generated/shardline/protocol/joined.ts
var Joined = class _Joined {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsJoined(bb, obj) {
    return (obj || new _Joined()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsJoined(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Joined()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  instanceId(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  /**
   * The entity this player controls.
   */
  entityId() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  tick() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  arenaWidth() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.readFloat32(this.bb_pos + offset) : 0;
  }
  arenaHeight() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.readFloat32(this.bb_pos + offset) : 0;
  }
  entities(index, obj) {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? (obj || new EntityState()).__init(this.bb.__vector(this.bb_pos + offset) + index * 24, this.bb) : null;
  }
  entitiesLength() {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  /**
   * Game-specific state beyond entities (the game trait's own encoding).
   */
  custom(index) {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? this.bb.readUint8(this.bb.__vector(this.bb_pos + offset) + index) : 0;
  }
  customLength() {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  customArray() {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + offset), this.bb.__vector_len(this.bb_pos + offset)) : null;
  }
  /**
   * z and facing of `entities`, same length and order; absent when every
   * entity has z = 0 and facing = 0 (a 2D game).
   */
  poses(index, obj) {
    const offset = this.bb.__offset(this.bb_pos, 18);
    return offset ? (obj || new EntityPose()).__init(this.bb.__vector(this.bb_pos + offset) + index * 8, this.bb) : null;
  }
  posesLength() {
    const offset = this.bb.__offset(this.bb_pos, 18);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  static startJoined(builder) {
    builder.startObject(8);
  }
  static addInstanceId(builder, instanceIdOffset) {
    builder.addFieldOffset(0, instanceIdOffset, 0);
  }
  static addEntityId(builder, entityId) {
    builder.addFieldInt32(1, entityId, 0);
  }
  static addTick(builder, tick) {
    builder.addFieldInt64(2, tick, BigInt("0"));
  }
  static addArenaWidth(builder, arenaWidth) {
    builder.addFieldFloat32(3, arenaWidth, 0);
  }
  static addArenaHeight(builder, arenaHeight) {
    builder.addFieldFloat32(4, arenaHeight, 0);
  }
  static addEntities(builder, entitiesOffset) {
    builder.addFieldOffset(5, entitiesOffset, 0);
  }
  static startEntitiesVector(builder, numElems) {
    builder.startVector(24, numElems, 4);
  }
  static addCustom(builder, customOffset) {
    builder.addFieldOffset(6, customOffset, 0);
  }
  static createCustomVector(builder, data) {
    builder.startVector(1, data.length, 1);
    for (let i = data.length - 1; i >= 0; i--) {
      builder.addInt8(data[i]);
    }
    return builder.endVector();
  }
  static startCustomVector(builder, numElems) {
    builder.startVector(1, numElems, 1);
  }
  static addPoses(builder, posesOffset) {
    builder.addFieldOffset(7, posesOffset, 0);
  }
  static startPosesVector(builder, numElems) {
    builder.startVector(8, numElems, 4);
  }
  static endJoined(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createJoined(builder, instanceIdOffset, entityId, tick, arenaWidth, arenaHeight, entitiesOffset, customOffset, posesOffset) {
    _Joined.startJoined(builder);
    _Joined.addInstanceId(builder, instanceIdOffset);
    _Joined.addEntityId(builder, entityId);
    _Joined.addTick(builder, tick);
    _Joined.addArenaWidth(builder, arenaWidth);
    _Joined.addArenaHeight(builder, arenaHeight);
    _Joined.addEntities(builder, entitiesOffset);
    _Joined.addCustom(builder, customOffset);
    _Joined.addPoses(builder, posesOffset);
    return _Joined.endJoined(builder);
  }
};

// src/generated/shardline/protocol/notice.ts
var Notice = class _Notice {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsNotice(bb, obj) {
    return (obj || new _Notice()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsNotice(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Notice()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  message(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  region(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  /**
   * When it was sent, microseconds since the Unix epoch (sender's clock).
   */
  sentAtUs() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startNotice(builder) {
    builder.startObject(3);
  }
  static addMessage(builder, messageOffset) {
    builder.addFieldOffset(0, messageOffset, 0);
  }
  static addRegion(builder, regionOffset) {
    builder.addFieldOffset(1, regionOffset, 0);
  }
  static addSentAtUs(builder, sentAtUs) {
    builder.addFieldInt64(2, sentAtUs, BigInt("0"));
  }
  static endNotice(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createNotice(builder, messageOffset, regionOffset, sentAtUs) {
    _Notice.startNotice(builder);
    _Notice.addMessage(builder, messageOffset);
    _Notice.addRegion(builder, regionOffset);
    _Notice.addSentAtUs(builder, sentAtUs);
    return _Notice.endNotice(builder);
  }
};

// src/generated/shardline/protocol/player-joined.ts
var PlayerJoined = class _PlayerJoined {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsPlayerJoined(bb, obj) {
    return (obj || new _PlayerJoined()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsPlayerJoined(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _PlayerJoined()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  playerId() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  entityId() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  name(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startPlayerJoined(builder) {
    builder.startObject(3);
  }
  static addPlayerId(builder, playerId) {
    builder.addFieldInt64(0, playerId, BigInt("0"));
  }
  static addEntityId(builder, entityId) {
    builder.addFieldInt32(1, entityId, 0);
  }
  static addName(builder, nameOffset) {
    builder.addFieldOffset(2, nameOffset, 0);
  }
  static endPlayerJoined(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createPlayerJoined(builder, playerId, entityId, nameOffset) {
    _PlayerJoined.startPlayerJoined(builder);
    _PlayerJoined.addPlayerId(builder, playerId);
    _PlayerJoined.addEntityId(builder, entityId);
    _PlayerJoined.addName(builder, nameOffset);
    return _PlayerJoined.endPlayerJoined(builder);
  }
};

// src/generated/shardline/protocol/leave-reason.ts
var LeaveReason = /* @__PURE__ */ ((LeaveReason2) => {
  LeaveReason2[LeaveReason2["Left"] = 0] = "Left";
  LeaveReason2[LeaveReason2["Disconnected"] = 1] = "Disconnected";
  LeaveReason2[LeaveReason2["TimedOut"] = 2] = "TimedOut";
  LeaveReason2[LeaveReason2["Moved"] = 3] = "Moved";
  LeaveReason2[LeaveReason2["Kicked"] = 4] = "Kicked";
  return LeaveReason2;
})(LeaveReason || {});

// src/generated/shardline/protocol/player-left.ts
var PlayerLeft = class _PlayerLeft {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsPlayerLeft(bb, obj) {
    return (obj || new _PlayerLeft()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsPlayerLeft(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _PlayerLeft()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  playerId() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  entityId() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  reason() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* Left */;
  }
  static startPlayerLeft(builder) {
    builder.startObject(3);
  }
  static addPlayerId(builder, playerId) {
    builder.addFieldInt64(0, playerId, BigInt("0"));
  }
  static addEntityId(builder, entityId) {
    builder.addFieldInt32(1, entityId, 0);
  }
  static addReason(builder, reason) {
    builder.addFieldInt8(2, reason, 0 /* Left */);
  }
  static endPlayerLeft(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createPlayerLeft(builder, playerId, entityId, reason) {
    _PlayerLeft.startPlayerLeft(builder);
    _PlayerLeft.addPlayerId(builder, playerId);
    _PlayerLeft.addEntityId(builder, entityId);
    _PlayerLeft.addReason(builder, reason);
    return _PlayerLeft.endPlayerLeft(builder);
  }
};

// src/generated/shardline/protocol/pong.ts
var Pong = class _Pong {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsPong(bb, obj) {
    return (obj || new _Pong()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsPong(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Pong()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  clientTime() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readFloat64(this.bb_pos + offset) : 0;
  }
  /**
   * Server wall clock, microseconds since the Unix epoch.
   */
  serverTimeUs() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startPong(builder) {
    builder.startObject(2);
  }
  static addClientTime(builder, clientTime) {
    builder.addFieldFloat64(0, clientTime, 0);
  }
  static addServerTimeUs(builder, serverTimeUs) {
    builder.addFieldInt64(1, serverTimeUs, BigInt("0"));
  }
  static endPong(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createPong(builder, clientTime, serverTimeUs) {
    _Pong.startPong(builder);
    _Pong.addClientTime(builder, clientTime);
    _Pong.addServerTimeUs(builder, serverTimeUs);
    return _Pong.endPong(builder);
  }
};

// src/generated/shardline/protocol/state-delta.ts
var StateDelta = class _StateDelta {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsStateDelta(bb, obj) {
    return (obj || new _StateDelta()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsStateDelta(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _StateDelta()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  tick() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  /**
   * The tick this delta applies to (one the client acknowledged); 0 = a full
   * state: start from an empty world.
   */
  baselineTick() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  /**
   * As StateUpdate.
   */
  lastInputSeq() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  inputsApplied() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  /**
   * Entities removed, then entities entered or changed, quantized
   * (docs/protocol.md "Delta format").
   */
  entities(index) {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.readUint8(this.bb.__vector(this.bb_pos + offset) + index) : 0;
  }
  entitiesLength() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  entitiesArray() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + offset), this.bb.__vector_len(this.bb_pos + offset)) : null;
  }
  /**
   * When present: the game's custom state replaces the baseline's.
   */
  customFull(index) {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? this.bb.readUint8(this.bb.__vector(this.bb_pos + offset) + index) : 0;
  }
  customFullLength() {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  customFullArray() {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + offset), this.bb.__vector_len(this.bb_pos + offset)) : null;
  }
  /**
   * When present: runs of bytes changed in the baseline's custom state
   * (docs/protocol.md "Custom state patch"). Absent with custom_full
   * absent: custom state unchanged.
   */
  customPatch(index) {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? this.bb.readUint8(this.bb.__vector(this.bb_pos + offset) + index) : 0;
  }
  customPatchLength() {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  customPatchArray() {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + offset), this.bb.__vector_len(this.bb_pos + offset)) : null;
  }
  static startStateDelta(builder) {
    builder.startObject(7);
  }
  static addTick(builder, tick) {
    builder.addFieldInt64(0, tick, BigInt("0"));
  }
  static addBaselineTick(builder, baselineTick) {
    builder.addFieldInt64(1, baselineTick, BigInt("0"));
  }
  static addLastInputSeq(builder, lastInputSeq) {
    builder.addFieldInt32(2, lastInputSeq, 0);
  }
  static addInputsApplied(builder, inputsApplied) {
    builder.addFieldInt32(3, inputsApplied, 0);
  }
  static addEntities(builder, entitiesOffset) {
    builder.addFieldOffset(4, entitiesOffset, 0);
  }
  static createEntitiesVector(builder, data) {
    builder.startVector(1, data.length, 1);
    for (let i = data.length - 1; i >= 0; i--) {
      builder.addInt8(data[i]);
    }
    return builder.endVector();
  }
  static startEntitiesVector(builder, numElems) {
    builder.startVector(1, numElems, 1);
  }
  static addCustomFull(builder, customFullOffset) {
    builder.addFieldOffset(5, customFullOffset, 0);
  }
  static createCustomFullVector(builder, data) {
    builder.startVector(1, data.length, 1);
    for (let i = data.length - 1; i >= 0; i--) {
      builder.addInt8(data[i]);
    }
    return builder.endVector();
  }
  static startCustomFullVector(builder, numElems) {
    builder.startVector(1, numElems, 1);
  }
  static addCustomPatch(builder, customPatchOffset) {
    builder.addFieldOffset(6, customPatchOffset, 0);
  }
  static createCustomPatchVector(builder, data) {
    builder.startVector(1, data.length, 1);
    for (let i = data.length - 1; i >= 0; i--) {
      builder.addInt8(data[i]);
    }
    return builder.endVector();
  }
  static startCustomPatchVector(builder, numElems) {
    builder.startVector(1, numElems, 1);
  }
  static endStateDelta(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createStateDelta(builder, tick, baselineTick, lastInputSeq, inputsApplied, entitiesOffset, customFullOffset, customPatchOffset) {
    _StateDelta.startStateDelta(builder);
    _StateDelta.addTick(builder, tick);
    _StateDelta.addBaselineTick(builder, baselineTick);
    _StateDelta.addLastInputSeq(builder, lastInputSeq);
    _StateDelta.addInputsApplied(builder, inputsApplied);
    _StateDelta.addEntities(builder, entitiesOffset);
    _StateDelta.addCustomFull(builder, customFullOffset);
    _StateDelta.addCustomPatch(builder, customPatchOffset);
    return _StateDelta.endStateDelta(builder);
  }
};

// src/generated/shardline/protocol/state-update.ts
var StateUpdate = class _StateUpdate {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsStateUpdate(bb, obj) {
    return (obj || new _StateUpdate()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsStateUpdate(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _StateUpdate()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  tick() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  /**
   * Highest Input.seq applied for this player (0 = none yet).
   */
  lastInputSeq() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  /**
   * Inputs applied for this player since it joined this instance.
   */
  inputsApplied() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  entities(index, obj) {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? (obj || new EntityState()).__init(this.bb.__vector(this.bb_pos + offset) + index * 24, this.bb) : null;
  }
  entitiesLength() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  custom(index) {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.readUint8(this.bb.__vector(this.bb_pos + offset) + index) : 0;
  }
  customLength() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  customArray() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? new Uint8Array(this.bb.bytes().buffer, this.bb.bytes().byteOffset + this.bb.__vector(this.bb_pos + offset), this.bb.__vector_len(this.bb_pos + offset)) : null;
  }
  /**
   * As Joined.poses.
   */
  poses(index, obj) {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? (obj || new EntityPose()).__init(this.bb.__vector(this.bb_pos + offset) + index * 8, this.bb) : null;
  }
  posesLength() {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  static startStateUpdate(builder) {
    builder.startObject(6);
  }
  static addTick(builder, tick) {
    builder.addFieldInt64(0, tick, BigInt("0"));
  }
  static addLastInputSeq(builder, lastInputSeq) {
    builder.addFieldInt32(1, lastInputSeq, 0);
  }
  static addInputsApplied(builder, inputsApplied) {
    builder.addFieldInt32(2, inputsApplied, 0);
  }
  static addEntities(builder, entitiesOffset) {
    builder.addFieldOffset(3, entitiesOffset, 0);
  }
  static startEntitiesVector(builder, numElems) {
    builder.startVector(24, numElems, 4);
  }
  static addCustom(builder, customOffset) {
    builder.addFieldOffset(4, customOffset, 0);
  }
  static createCustomVector(builder, data) {
    builder.startVector(1, data.length, 1);
    for (let i = data.length - 1; i >= 0; i--) {
      builder.addInt8(data[i]);
    }
    return builder.endVector();
  }
  static startCustomVector(builder, numElems) {
    builder.startVector(1, numElems, 1);
  }
  static addPoses(builder, posesOffset) {
    builder.addFieldOffset(5, posesOffset, 0);
  }
  static startPosesVector(builder, numElems) {
    builder.startVector(8, numElems, 4);
  }
  static endStateUpdate(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createStateUpdate(builder, tick, lastInputSeq, inputsApplied, entitiesOffset, customOffset, posesOffset) {
    _StateUpdate.startStateUpdate(builder);
    _StateUpdate.addTick(builder, tick);
    _StateUpdate.addLastInputSeq(builder, lastInputSeq);
    _StateUpdate.addInputsApplied(builder, inputsApplied);
    _StateUpdate.addEntities(builder, entitiesOffset);
    _StateUpdate.addCustom(builder, customOffset);
    _StateUpdate.addPoses(builder, posesOffset);
    return _StateUpdate.endStateUpdate(builder);
  }
};

// src/generated/shardline/protocol/transfer.ts
var Transfer = class _Transfer {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsTransfer(bb, obj) {
    return (obj || new _Transfer()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsTransfer(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Transfer()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  url(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  instanceId(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startTransfer(builder) {
    builder.startObject(2);
  }
  static addUrl(builder, urlOffset) {
    builder.addFieldOffset(0, urlOffset, 0);
  }
  static addInstanceId(builder, instanceIdOffset) {
    builder.addFieldOffset(1, instanceIdOffset, 0);
  }
  static endTransfer(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createTransfer(builder, urlOffset, instanceIdOffset) {
    _Transfer.startTransfer(builder);
    _Transfer.addUrl(builder, urlOffset);
    _Transfer.addInstanceId(builder, instanceIdOffset);
    return _Transfer.endTransfer(builder);
  }
};

// src/generated/shardline/protocol/limits.ts
var Limits = class _Limits {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsLimits(bb, obj) {
    return (obj || new _Limits()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsLimits(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Limits()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  maxPayloadBytes() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  inputsPerTickMax() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  playersPerInstanceMax() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  heartbeatMs() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  connectTimeoutMs() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  reconnectGraceMs() {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  /**
   * V2: how many recent ticks the server can encode a delta against; a client
   * keeps its reconstructed world for at least this many ticks after its Ack.
   */
  deltaHistoryTicks() {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  /**
   * Largest Message.body accepted, in bytes.
   */
  messageBytesMax() {
    const offset = this.bb.__offset(this.bb_pos, 18);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  /**
   * Messages accepted per tick from one player.
   */
  messagesPerTickMax() {
    const offset = this.bb.__offset(this.bb_pos, 20);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  static startLimits(builder) {
    builder.startObject(9);
  }
  static addMaxPayloadBytes(builder, maxPayloadBytes) {
    builder.addFieldInt32(0, maxPayloadBytes, 0);
  }
  static addInputsPerTickMax(builder, inputsPerTickMax) {
    builder.addFieldInt16(1, inputsPerTickMax, 0);
  }
  static addPlayersPerInstanceMax(builder, playersPerInstanceMax) {
    builder.addFieldInt16(2, playersPerInstanceMax, 0);
  }
  static addHeartbeatMs(builder, heartbeatMs) {
    builder.addFieldInt32(3, heartbeatMs, 0);
  }
  static addConnectTimeoutMs(builder, connectTimeoutMs) {
    builder.addFieldInt32(4, connectTimeoutMs, 0);
  }
  static addReconnectGraceMs(builder, reconnectGraceMs) {
    builder.addFieldInt32(5, reconnectGraceMs, 0);
  }
  static addDeltaHistoryTicks(builder, deltaHistoryTicks) {
    builder.addFieldInt16(6, deltaHistoryTicks, 0);
  }
  static addMessageBytesMax(builder, messageBytesMax) {
    builder.addFieldInt32(7, messageBytesMax, 0);
  }
  static addMessagesPerTickMax(builder, messagesPerTickMax) {
    builder.addFieldInt16(8, messagesPerTickMax, 0);
  }
  static endLimits(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createLimits(builder, maxPayloadBytes, inputsPerTickMax, playersPerInstanceMax, heartbeatMs, connectTimeoutMs, reconnectGraceMs, deltaHistoryTicks, messageBytesMax, messagesPerTickMax) {
    _Limits.startLimits(builder);
    _Limits.addMaxPayloadBytes(builder, maxPayloadBytes);
    _Limits.addInputsPerTickMax(builder, inputsPerTickMax);
    _Limits.addPlayersPerInstanceMax(builder, playersPerInstanceMax);
    _Limits.addHeartbeatMs(builder, heartbeatMs);
    _Limits.addConnectTimeoutMs(builder, connectTimeoutMs);
    _Limits.addReconnectGraceMs(builder, reconnectGraceMs);
    _Limits.addDeltaHistoryTicks(builder, deltaHistoryTicks);
    _Limits.addMessageBytesMax(builder, messageBytesMax);
    _Limits.addMessagesPerTickMax(builder, messagesPerTickMax);
    return _Limits.endLimits(builder);
  }
};

// src/generated/shardline/protocol/welcome.ts
var Welcome = class _Welcome {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsWelcome(bb, obj) {
    return (obj || new _Welcome()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsWelcome(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Welcome()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  playerId() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  resumeToken(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  nodeId(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  region(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  shard() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  tickRateHz() {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  limits(obj) {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? (obj || new Limits()).__init(this.bb.__indirect(this.bb_pos + offset), this.bb) : null;
  }
  /**
   * True when Hello carried a token and the player got its seat back; a
   * Joined with the full state follows.
   */
  resumed() {
    const offset = this.bb.__offset(this.bb_pos, 18);
    return offset ? !!this.bb.readInt8(this.bb_pos + offset) : false;
  }
  static startWelcome(builder) {
    builder.startObject(8);
  }
  static addPlayerId(builder, playerId) {
    builder.addFieldInt64(0, playerId, BigInt("0"));
  }
  static addResumeToken(builder, resumeTokenOffset) {
    builder.addFieldOffset(1, resumeTokenOffset, 0);
  }
  static addNodeId(builder, nodeIdOffset) {
    builder.addFieldOffset(2, nodeIdOffset, 0);
  }
  static addRegion(builder, regionOffset) {
    builder.addFieldOffset(3, regionOffset, 0);
  }
  static addShard(builder, shard) {
    builder.addFieldInt16(4, shard, 0);
  }
  static addTickRateHz(builder, tickRateHz) {
    builder.addFieldInt16(5, tickRateHz, 0);
  }
  static addLimits(builder, limitsOffset) {
    builder.addFieldOffset(6, limitsOffset, 0);
  }
  static addResumed(builder, resumed) {
    builder.addFieldInt8(7, +resumed, 0);
  }
  static endWelcome(builder) {
    const offset = builder.endObject();
    return offset;
  }
};

// src/generated/shardline/protocol/server-body.ts
var ServerBody = /* @__PURE__ */ ((ServerBody2) => {
  ServerBody2[ServerBody2["NONE"] = 0] = "NONE";
  ServerBody2[ServerBody2["Welcome"] = 1] = "Welcome";
  ServerBody2[ServerBody2["Joined"] = 2] = "Joined";
  ServerBody2[ServerBody2["StateUpdate"] = 3] = "StateUpdate";
  ServerBody2[ServerBody2["PlayerJoined"] = 4] = "PlayerJoined";
  ServerBody2[ServerBody2["PlayerLeft"] = 5] = "PlayerLeft";
  ServerBody2[ServerBody2["Pong"] = 6] = "Pong";
  ServerBody2[ServerBody2["Error"] = 7] = "Error";
  ServerBody2[ServerBody2["Notice"] = 8] = "Notice";
  ServerBody2[ServerBody2["Transfer"] = 9] = "Transfer";
  ServerBody2[ServerBody2["StateDelta"] = 10] = "StateDelta";
  ServerBody2[ServerBody2["GameEvent"] = 11] = "GameEvent";
  return ServerBody2;
})(ServerBody || {});

// src/generated/shardline/protocol/server-message.ts
var ServerMessage = class _ServerMessage {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsServerMessage(bb, obj) {
    return (obj || new _ServerMessage()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsServerMessage(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _ServerMessage()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  bodyType() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* NONE */;
  }
  body(obj) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__union(obj, this.bb_pos + offset) : null;
  }
  static startServerMessage(builder) {
    builder.startObject(2);
  }
  static addBodyType(builder, bodyType) {
    builder.addFieldInt8(0, bodyType, 0 /* NONE */);
  }
  static addBody(builder, bodyOffset) {
    builder.addFieldOffset(1, bodyOffset, 0);
  }
  static endServerMessage(builder) {
    const offset = builder.endObject();
    return offset;
  }
  static createServerMessage(builder, bodyType, bodyOffset) {
    _ServerMessage.startServerMessage(builder);
    _ServerMessage.addBodyType(builder, bodyType);
    _ServerMessage.addBody(builder, bodyOffset);
    return _ServerMessage.endServerMessage(builder);
  }
};

// src/codec.ts
var PROTOCOL_VERSION = 2;
var MESSAGE_KIND_MAX = 65535;
var PLAYER_NAME_BYTES_MAX = 32;
var INSTANCE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
var BUILDER_INITIAL_BYTES = 256;
var Encoder = class {
  /** `version`: what Hello says (default PROTOCOL_VERSION). */
  constructor(version = PROTOCOL_VERSION) {
    this.version = version;
    this.b = new Builder(BUILDER_INITIAL_BYTES);
  }
  /** Hello: a new player (with a join ticket when the server requires one), or a resume with a token. */
  hello(name, resumeToken, ticket) {
    const b = this.start();
    const nameOff = b.createString(name);
    const tokenOff = resumeToken ? b.createString(resumeToken) : 0;
    const ticketOff = ticket ? b.createString(ticket) : 0;
    const body = Hello.createHello(b, this.version, nameOff, tokenOff, ticketOff);
    return this.finish(1 /* Hello */, body);
  }
  join(instanceId, createIfMissing = true) {
    const b = this.start();
    const idOff = instanceId !== void 0 ? b.createString(instanceId) : 0;
    const body = Join.createJoin(b, idOff, createIfMissing);
    return this.finish(2 /* Join */, body);
  }
  leave() {
    const b = this.start();
    return this.finish(3 /* Leave */, Leave.createLeave(b));
  }
  /** `ackTick`: version 2, the newest StateDelta tick applied and not acknowledged yet (0: none). */
  input(seq, moveX, moveY, buttons, ackTick = 0) {
    const b = this.start();
    return this.finish(4 /* Input */, Input.createInput(b, seq, moveX, moveY, buttons, BigInt(ackTick)));
  }
  /** Version 2: the newest StateDelta tick this client applied. */
  ack(tick) {
    const b = this.start();
    return this.finish(6 /* Ack */, Ack.createAck(b, BigInt(tick)));
  }
  /** A game message: `kind` is the game's own (u16). */
  message(kind, body) {
    const b = this.start();
    const bodyOff = Message.createBodyVector(b, body);
    return this.finish(7 /* Message */, Message.createMessage(b, kind, bodyOff));
  }
  ping(clientTime) {
    const b = this.start();
    return this.finish(5 /* Ping */, Ping.createPing(b, clientTime));
  }
  start() {
    this.b.clear();
    return this.b;
  }
  finish(type, body) {
    this.b.finish(ClientMessage.createClientMessage(this.b, type, body));
    return this.b.asUint8Array().slice();
  }
};
function utf8Bytes(s) {
  return new TextEncoder().encode(s).length;
}
function decodeServerMessage(bytes) {
  const bb = new ByteBuffer(bytes);
  const msg = ServerMessage.getRootAsServerMessage(bb);
  switch (msg.bodyType()) {
    case 1 /* Welcome */: {
      const w = msg.body(new Welcome());
      const l = w.limits();
      const limits = {
        maxPayloadBytes: l?.maxPayloadBytes() ?? 0,
        inputsPerTickMax: l?.inputsPerTickMax() ?? 0,
        playersPerInstanceMax: l?.playersPerInstanceMax() ?? 0,
        heartbeatMs: l?.heartbeatMs() ?? 0,
        connectTimeoutMs: l?.connectTimeoutMs() ?? 0,
        reconnectGraceMs: l?.reconnectGraceMs() ?? 0,
        deltaHistoryTicks: l?.deltaHistoryTicks() ?? 0,
        messageBytesMax: l?.messageBytesMax() ?? 0,
        messagesPerTickMax: l?.messagesPerTickMax() ?? 0
      };
      return {
        type: "welcome",
        welcome: {
          playerId: w.playerId(),
          resumeToken: w.resumeToken() ?? "",
          nodeId: w.nodeId() ?? "",
          region: w.region() ?? "",
          shard: w.shard(),
          tickRateHz: w.tickRateHz(),
          limits,
          resumed: w.resumed()
        }
      };
    }
    case 2 /* Joined */: {
      const j = msg.body(new Joined());
      return {
        type: "joined",
        joined: {
          instanceId: j.instanceId() ?? "",
          entityId: j.entityId(),
          tick: Number(j.tick()),
          arenaWidth: j.arenaWidth(),
          arenaHeight: j.arenaHeight(),
          entities: readEntities(j.entitiesLength(), (i, o) => j.entities(i, o), j.posesLength(), (i, o) => j.poses(i, o)),
          custom: copyBytes(j.customArray())
        }
      };
    }
    case 3 /* StateUpdate */: {
      const u = msg.body(new StateUpdate());
      return {
        type: "state",
        state: {
          tick: Number(u.tick()),
          lastInputSeq: u.lastInputSeq(),
          inputsApplied: u.inputsApplied(),
          entities: readEntities(u.entitiesLength(), (i, o) => u.entities(i, o), u.posesLength(), (i, o) => u.poses(i, o)),
          custom: copyBytes(u.customArray())
        }
      };
    }
    case 10 /* StateDelta */: {
      const d = msg.body(new StateDelta());
      const full = d.customFullArray();
      const patch = d.customPatchArray();
      return {
        type: "delta",
        delta: {
          tick: Number(d.tick()),
          baselineTick: Number(d.baselineTick()),
          lastInputSeq: d.lastInputSeq(),
          inputsApplied: d.inputsApplied(),
          entities: copyBytes(d.entitiesArray()),
          customFull: full ? full.slice() : null,
          customPatch: patch ? patch.slice() : null
        }
      };
    }
    case 11 /* GameEvent */: {
      const e = msg.body(new GameEvent());
      return { type: "event", event: { tick: Number(e.tick()), kind: e.kind(), body: copyBytes(e.bodyArray()) } };
    }
    case 4 /* PlayerJoined */: {
      const p = msg.body(new PlayerJoined());
      return { type: "playerJoined", playerJoined: { playerId: p.playerId(), entityId: p.entityId(), name: p.name() ?? "" } };
    }
    case 5 /* PlayerLeft */: {
      const p = msg.body(new PlayerLeft());
      return { type: "playerLeft", playerLeft: { playerId: p.playerId(), entityId: p.entityId(), reason: p.reason() } };
    }
    case 6 /* Pong */: {
      const p = msg.body(new Pong());
      return { type: "pong", pong: { clientTime: p.clientTime(), serverTimeUs: p.serverTimeUs() } };
    }
    case 7 /* Error */: {
      const e = msg.body(new Error2());
      return { type: "error", error: { code: e.code(), message: e.message() ?? "" } };
    }
    case 8 /* Notice */: {
      const n = msg.body(new Notice());
      return { type: "notice", notice: { message: n.message() ?? "", region: n.region() ?? "", sentAtUs: n.sentAtUs() } };
    }
    case 9 /* Transfer */: {
      const t = msg.body(new Transfer());
      return { type: "transfer", transfer: { url: t.url() ?? "", instanceId: t.instanceId() ?? "" } };
    }
    default:
      return null;
  }
}
function readEntities(n, at, poses, poseAt) {
  if (poses !== 0 && poses !== n) throw new Error(`${poses} poses for ${n} entities`);
  const out = new Array(n);
  const e = new EntityState();
  const p = new EntityPose();
  for (let i = 0; i < n; i++) {
    at(i, e);
    const z = poses ? poseAt(i, p).z() : 0;
    const facing = poses ? p.facing() : 0;
    out[i] = { id: e.id(), kind: e.kind(), flags: e.flags(), x: e.x(), y: e.y(), vx: e.vx(), vy: e.vy(), z, facing };
  }
  return out;
}
function copyBytes(view) {
  return view ? view.slice() : new Uint8Array(0);
}

// src/delta.ts
var POSITION_SCALE = 64;
var FACING_STEPS = 65536;
var CUSTOM_STATE_BYTES_MAX = 1 << 24;
var X = 1;
var Y = 2;
var Z = 4;
var VX = 8;
var VY = 16;
var FACING = 32;
var KIND_FLAGS = 64;
var ENTERED = 128;
var U16_MAX = 65535;
var U32_MAX = 4294967295;
var DeltaError = class extends Error {
  constructor(message) {
    super(message);
    this.name = "DeltaError";
  }
};
var EMPTY_WORLD = { tick: 0, entities: /* @__PURE__ */ new Map(), custom: new Uint8Array(0) };
function quantizePosition(v) {
  const q = Math.round(Math.abs(v) * POSITION_SCALE);
  return (v < 0 ? -q : q) | 0;
}
function quantizeFacing(radians) {
  const steps = Math.abs(radians) / (2 * Math.PI) * FACING_STEPS;
  const q = (radians < 0 ? -Math.round(steps) : Math.round(steps)) % FACING_STEPS;
  return q < 0 ? q + FACING_STEPS : q;
}
function toEntity(q) {
  return {
    id: q.id,
    kind: q.kind,
    flags: q.flags,
    x: q.x / POSITION_SCALE,
    y: q.y / POSITION_SCALE,
    vx: q.vx / POSITION_SCALE,
    vy: q.vy / POSITION_SCALE,
    z: q.z / POSITION_SCALE,
    facing: q.facing * 2 * Math.PI / FACING_STEPS
  };
}
var Reader = class {
  constructor(bytes, what) {
    this.bytes = bytes;
    this.what = what;
    this.pos = 0;
  }
  get done() {
    return this.pos >= this.bytes.length;
  }
  /** Bytes not read yet. */
  get left() {
    return this.bytes.length - this.pos;
  }
  /** An unsigned LEB128 varint of at most 32 bits (5 bytes). */
  uv() {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.bytes.length) this.fail("a varint runs past the end");
      const b = this.bytes[this.pos++];
      if (i === 4 && b > 15) this.fail("a varint over 32 bits");
      value += (b & 127) * 2 ** (7 * i);
      if ((b & 128) === 0) return value;
    }
    return this.fail("a varint over 32 bits");
  }
  /** A zigzag-encoded signed varint: an i32. */
  sv() {
    const u = this.uv();
    return u >>> 1 ^ -(u & 1);
  }
  byte() {
    if (this.pos >= this.bytes.length) this.fail("a record runs past the end");
    return this.bytes[this.pos++];
  }
  take(n) {
    if (n > this.left) this.fail(`a run of ${n} bytes runs past the end`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  fail(why) {
    throw new DeltaError(`${this.what}: ${why} (at byte ${this.pos} of ${this.bytes.length})`);
  }
};
function count(r, what) {
  const n = r.uv();
  if (n > r.left) r.fail(`${what} ${n} with ${r.left} bytes left`);
  return n;
}
function applyDelta(baseline, delta) {
  const r = new Reader(delta.entities, `StateDelta ${delta.tick} entities`);
  const base = baseline.entities;
  const removed = /* @__PURE__ */ new Set();
  const removedCount = count(r, "removed_count");
  let id = 0;
  for (let i = 0; i < removedCount; i++) {
    id = nextId(r, id, i, "removed");
    if (base.has(id)) removed.add(id);
  }
  const records = [];
  const recordCount = count(r, "record_count");
  id = 0;
  for (let i = 0; i < recordCount; i++) {
    id = nextId(r, id, i, "record");
    if (removed.has(id)) r.fail(`entity ${id} is both removed and recorded`);
    const mask = r.byte();
    const entered = (mask & ENTERED) !== 0;
    const was = entered ? void 0 : base.get(id);
    if (!entered && was === void 0) r.fail(`entity ${id} changed but is not in baseline ${delta.baselineTick}`);
    let kind = was?.kind ?? 0;
    let flags = was?.flags ?? 0;
    if (mask & KIND_FLAGS) {
      kind = r.uv();
      flags = r.uv();
      if (kind > U16_MAX || flags > U16_MAX) r.fail(`entity ${id}: kind ${kind} or flags ${flags} over 16 bits`);
    }
    const field = (bit, old) => mask & bit ? r.sv() + old | 0 : old;
    const x = field(X, was?.x ?? 0);
    const y = field(Y, was?.y ?? 0);
    const z = field(Z, was?.z ?? 0);
    const vx = field(VX, was?.vx ?? 0);
    const vy = field(VY, was?.vy ?? 0);
    let facing = was?.facing ?? 0;
    if (mask & FACING) {
      facing = r.uv();
      if (facing > U16_MAX) r.fail(`entity ${id}: facing ${facing} over 16 bits`);
    }
    records.push({ id, kind, flags, x, y, z, vx, vy, facing });
  }
  if (!r.done) r.fail(`${r.left} bytes after the last record`);
  const out = /* @__PURE__ */ new Map();
  let j = 0;
  for (const [bid, e] of base) {
    while (j < records.length && records[j].id < bid) {
      out.set(records[j].id, records[j]);
      j++;
    }
    if (j < records.length && records[j].id === bid) {
      out.set(bid, records[j]);
      j++;
    } else if (!removed.has(bid)) {
      out.set(bid, e);
    }
  }
  for (; j < records.length; j++) out.set(records[j].id, records[j]);
  return { tick: delta.tick, entities: out, custom: customState(baseline.custom, delta) };
}
function nextId(r, previous, index, what) {
  const gap = r.uv();
  if (index > 0 && gap === 0) r.fail(`${what} ids not ascending (${previous} twice)`);
  const id = previous + gap;
  if (id > U32_MAX) r.fail(`${what} id ${id} over 32 bits`);
  return id;
}
function customState(base, delta) {
  if (delta.customFull !== null) return delta.customFull;
  if (delta.customPatch === null) return base;
  const r = new Reader(delta.customPatch, `StateDelta ${delta.tick} custom_patch`);
  const len = r.uv();
  if (len > CUSTOM_STATE_BYTES_MAX) r.fail(`new_len ${len} over ${CUSTOM_STATE_BYTES_MAX} bytes`);
  const out = new Uint8Array(len);
  out.set(base.length > len ? base.subarray(0, len) : base);
  let end = 0;
  while (!r.done) {
    const start = end + r.uv();
    const n = r.uv();
    if (start + n > len) r.fail(`a run [${start}, ${start + n}) past new_len ${len}`);
    out.set(r.take(n), start);
    end = start + n;
  }
  return out;
}
var WorldHistory = class _WorldHistory {
  constructor(capacity) {
    this.worlds = /* @__PURE__ */ new Map();
    this.capacityValue = _WorldHistory.check(capacity);
  }
  static check(capacity) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`history capacity must be a positive integer (got ${capacity})`);
    return capacity;
  }
  get capacity() {
    return this.capacityValue;
  }
  /** Ticks kept, oldest first. */
  get ticks() {
    return [...this.worlds.keys()];
  }
  /** The newest world applied, or null. */
  get latest() {
    let last = null;
    for (const w of this.worlds.values()) last = w;
    return last;
  }
  get(tick) {
    return this.worlds.get(tick);
  }
  /** Changes how many worlds are kept (a new Welcome); the oldest beyond it go. */
  resize(capacity) {
    this.capacityValue = _WorldHistory.check(capacity);
    this.evict();
  }
  /** Forgets every world (a new Joined: the next delta is a full state). */
  clear() {
    this.worlds.clear();
  }
  /**
   * Applies `delta` to its baseline and keeps the result. Throws DeltaError
   * when the baseline is not kept (the server encoded against a tick this
   * client never applied or forgot) or the delta is malformed.
   */
  apply(delta) {
    let baseline = EMPTY_WORLD;
    if (delta.baselineTick !== 0) {
      const kept = this.worlds.get(delta.baselineTick);
      if (kept === void 0) {
        const ticks = this.ticks;
        const have = ticks.length === 0 ? "none" : `${ticks[0]}..${ticks[ticks.length - 1]} (${ticks.length})`;
        throw new DeltaError(`StateDelta ${delta.tick}: baseline tick ${delta.baselineTick} is not among the ticks kept: ${have}`);
      }
      if (delta.tick <= delta.baselineTick) {
        throw new DeltaError(`StateDelta ${delta.tick}: not after its baseline tick ${delta.baselineTick}`);
      }
      baseline = kept;
    }
    const world = applyDelta(baseline, delta);
    this.worlds.delete(world.tick);
    this.worlds.set(world.tick, world);
    this.evict();
    return world;
  }
  evict() {
    for (const tick of this.worlds.keys()) {
      if (this.worlds.size <= this.capacityValue) break;
      this.worlds.delete(tick);
    }
  }
};

// src/events.ts
var Emitter = class {
  constructor() {
    this.listeners = /* @__PURE__ */ new Map();
  }
  /** Calls `fn` on every `event`; returns a function that removes it. */
  on(event, fn) {
    let set = this.listeners.get(event);
    if (!set) {
      set = /* @__PURE__ */ new Set();
      this.listeners.set(event, set);
    }
    set.add(fn);
    return () => this.off(event, fn);
  }
  /** Calls `fn` on the next `event` only. */
  once(event, fn) {
    const off = this.on(event, (payload) => {
      off();
      fn(payload);
    });
    return off;
  }
  off(event, fn) {
    this.listeners.get(event)?.delete(fn);
  }
  emit(event, payload) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(payload);
      } catch (err) {
        this.listenerFailed(err);
      }
    }
  }
  /** A listener threw: re-thrown on a task of its own, so the host reports it. */
  listenerFailed(err) {
    queueMicrotask(() => {
      throw err;
    });
  }
};

// src/socket.ts
var OPEN = 1;
function defaultWebSocket() {
  const ws = globalThis.WebSocket;
  if (!ws) {
    throw new TypeError(
      'no global WebSocket (Node before 22?): pass one, e.g. new ShardlineClient({ WebSocket }) with `import WebSocket from "ws"`'
    );
  }
  return ws;
}
function abandon(sock, code, reason) {
  try {
    const terminate = sock.terminate;
    if (typeof terminate === "function") terminate.call(sock);
    else sock.close(code, reason);
  } catch {
  }
}
function messageBytes(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

// src/urls.ts
function baseUrl(url) {
  const u = new URL(url);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`not a WebSocket or HTTP URL: ${url}`);
  }
  u.search = "";
  u.hash = "";
  let path = u.pathname.replace(/\/+$/, "");
  if (path.endsWith("/play") || path.endsWith("/echo")) path = path.slice(0, -"/play".length);
  u.pathname = path;
  return u.toString().replace(/\/+$/, "");
}
function playUrl(base, instanceId) {
  const play = `${baseUrl(base)}/play`;
  return instanceId ? `${play}?instance=${encodeURIComponent(instanceId)}` : play;
}
function echoUrl(base) {
  return `${baseUrl(base)}/echo`;
}

// src/regions.ts
var PROBE_DEFAULTS = { samples: 3, timeoutMs: 2e3 };
var SAMPLE_BYTES = 16;
function probeRegions(regions, WebSocket, opts = PROBE_DEFAULTS, now = () => performance.now()) {
  return Promise.all(regions.map((r) => probeOne(r, WebSocket, opts, now)));
}
function fastest(probes) {
  let best = null;
  for (const p of probes) {
    if (p.rttMs !== null && (best === null || p.rttMs < best.rttMs)) best = p;
  }
  return best;
}
function probeOne(region, WebSocket, opts, now) {
  return new Promise((resolve) => {
    let sock = null;
    const rtts = [];
    let sentAt = 0;
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (sock) abandon(sock, 1e3, "probe done");
      if (error !== void 0) resolve({ region, rttMs: null, error });
      else resolve({ region, rttMs: median(rtts) });
    };
    const timer = setTimeout(() => finish(`no answer within ${opts.timeoutMs} ms`), opts.timeoutMs);
    const payload = new Uint8Array(SAMPLE_BYTES);
    const sendSample = () => {
      payload[0] = rtts.length;
      sentAt = now();
      sock?.send(payload);
    };
    try {
      sock = open(WebSocket, echoUrl(region.url));
    } catch (e) {
      finish(String(e));
      return;
    }
    sock.onopen = sendSample;
    sock.onmessage = (ev) => {
      const bytes = messageBytes(ev.data);
      if (!bytes || bytes[0] !== rtts.length) return;
      rtts.push(now() - sentAt);
      if (rtts.length >= opts.samples) finish();
      else sendSample();
    };
    sock.onerror = () => finish("connection failed");
    sock.onclose = (ev) => finish(`closed (${ev.code}) before the probe finished`);
  });
}
function open(WebSocket, url) {
  const s = new WebSocket(url);
  s.binaryType = "arraybuffer";
  return s;
}
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// src/types.ts
var ShardlineError = class extends Error {
  constructor(message, code = null, closeCode = null) {
    super(message);
    this.name = "ShardlineError";
    this.code = code;
    this.closeCode = closeCode;
  }
};
function errorCodeName(code) {
  return ErrorCode[code] ?? `code ${code}`;
}

// src/client.ts
var FINAL_CLOSE_CODES = /* @__PURE__ */ new Set([1e3, 1002, 1003, 1008, 1009, 4003]);
var MAX_REDIRECTS = 3;
var FINAL_ERROR_CODES = /* @__PURE__ */ new Set([
  1 /* BadMessage */,
  3 /* UnsupportedVersion */,
  21 /* TicketRequired */,
  22 /* TicketInvalid */,
  23 /* TicketReplayed */
]);
var TICKET_ERROR_CODES = /* @__PURE__ */ new Set([
  21 /* TicketRequired */,
  22 /* TicketInvalid */,
  23 /* TicketReplayed */
]);
var CLOSE_NO_TRAFFIC = 4900;
var CLOSE_BAD_DELTA = 4901;
var DEFAULTS = {
  pingIntervalMs: 2e3,
  deadAfterMs: 1e4,
  requestTimeoutMs: 1e4
};
var LIVENESS_CHECK_MS_MAX = 1e3;
var RTT_SMOOTHING = 1 / 8;
var ShardlineClient = class extends Emitter {
  constructor(options = {}) {
    super();
    /** Version 2: the worlds of the last Limits.delta_history_ticks deltas applied. */
    this.worlds = new WorldHistory(1);
    /** Version 2: the newest tick applied and not acknowledged yet (0: none). */
    this.ackDue = 0;
    this.sock = null;
    this.base = null;
    /** The owner's URL from the last Error(WrongNode): the instance runs on another node of the fleet. */
    this.redirectUrl = null;
    /** Where the last Transfer moved the seat, until the recovery loop goes there. */
    this.transferTarget = null;
    /** Transfers since the last StateUpdate (bounded by MAX_REDIRECTS). */
    this.transfersInARow = 0;
    /** The recovery loop (reconnect or Transfer) is running. */
    this.recovering = false;
    this.statusValue = "idle";
    this.nameValue = null;
    this.welcomeValue = null;
    /** The instance the player is seated in, as last Joined. */
    this.joinedValue = null;
    /** The instance the player wants to be in: re-joined when a resume fails. */
    this.instanceWanted = null;
    this.stateValue = null;
    this.entitiesValue = [];
    this.tickValue = 0;
    this.seq = 0;
    this.rttSmoothed = null;
    this.rttLastValue = null;
    this.pending = null;
    this.pings = /* @__PURE__ */ new Map();
    this.lastRecvAt = 0;
    this.pingTimer = null;
    this.liveTimer = null;
    this.sleepTimer = null;
    this.wakeSleep = null;
    /** close() was called: nothing may reconnect or report any more. */
    this.closing = false;
    this.WebSocketClass = options.WebSocket;
    this.reconnectOpts = options.reconnect === false ? null : { ...RECONNECT_DEFAULTS, ...typeof options.reconnect === "object" ? options.reconnect : {} };
    this.pingIntervalMs = options.pingIntervalMs ?? DEFAULTS.pingIntervalMs;
    this.deadAfterMs = options.deadAfterMs ?? DEFAULTS.deadAfterMs;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    this.probeOpts = { ...PROBE_DEFAULTS, ...options.probe };
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.renewTicket = options.renewTicket ?? null;
    this.fleet = options.fleet ?? [];
    this.version = options.protocolVersion ?? PROTOCOL_VERSION;
    if (this.version !== 1 && this.version !== 2) throw new RangeError(`protocolVersion must be 1 or 2 (got ${String(this.version)})`);
    this.enc = new Encoder(this.version);
  }
  /** The protocol version this client speaks (the `protocolVersion` option). */
  get protocolVersion() {
    return this.version;
  }
  get status() {
    return this.statusValue;
  }
  /** Base URL of the node the client talks to (after a redirect or Transfer: the new node), or null before connect(). */
  get url() {
    return this.base;
  }
  /** The last Welcome (node, region, shard, limits, token). */
  get welcome() {
    return this.welcomeValue;
  }
  /** The instance the player is in (the last Joined), or null. */
  get joined() {
    return this.joinedValue;
  }
  get playerId() {
    return this.welcomeValue?.playerId ?? null;
  }
  get instanceId() {
    return this.joinedValue?.instanceId ?? null;
  }
  /** The entity this player controls, or null outside an instance. */
  get entityId() {
    return this.joinedValue?.entityId ?? null;
  }
  /** The last `state` (null before the first after a Joined). */
  get state() {
    return this.stateValue;
  }
  /** Entities as of the last Joined or StateUpdate. */
  get entities() {
    return this.entitiesValue;
  }
  /** Server tick as of the last Joined or StateUpdate. */
  get tick() {
    return this.tickValue;
  }
  /** Smoothed round-trip time, ms (null before the first Pong). */
  get rtt() {
    return this.rttSmoothed;
  }
  get rttLast() {
    return this.rttLastValue;
  }
  /** Seq of the last input sent (inputs the server applied: `state.lastInputSeq`). */
  get inputSeq() {
    return this.seq;
  }
  /**
   * Opens the connection: to `target` (a node's base URL, e.g.
   * `wss://eu.example.com` or a page's `location.origin`), or to the region
   * whose /echo answers fastest.
   */
  async connect(target) {
    if (this.statusValue !== "idle" && this.statusValue !== "closed") {
      throw new ShardlineError(`connect() while ${this.statusValue}`);
    }
    this.closing = false;
    this.welcomeValue = null;
    this.joinedValue = null;
    this.instanceWanted = null;
    this.transferTarget = null;
    this.transfersInARow = 0;
    let url;
    let region = null;
    let probes = null;
    if (typeof target === "string") {
      url = target;
    } else {
      if (target.regions.length === 0) throw new ShardlineError("connect() needs at least one region");
      this.setStatus("connecting");
      probes = await probeRegions(target.regions, this.webSocketClass(), this.probeOpts, this.now);
      const best = fastest(probes);
      if (!best) {
        this.setStatus("closed");
        const why = probes.map((p) => `${p.region.name}: ${p.error}`).join("; ");
        throw new ShardlineError(`no region answered (${why})`);
      }
      region = best.region;
      url = best.region.url;
    }
    this.base = baseUrl(url);
    this.setStatus("connecting");
    try {
      await this.openSocket(playUrl(this.base));
    } catch (e) {
      this.setStatus("closed");
      throw e;
    }
    this.setStatus("connected");
    return { url: this.base, region, probes };
  }
  /**
   * Introduces the player (name: at most 32 bytes of UTF-8). On a server
   * with --join-secret, pass the join ticket the game's backend issued.
   */
  async hello(name, options = {}) {
    this.requireStatus("hello", "connected");
    if (utf8Bytes(name) > PLAYER_NAME_BYTES_MAX) {
      throw new RangeError(`player name over ${PLAYER_NAME_BYTES_MAX} bytes of UTF-8`);
    }
    this.nameValue = name;
    const { welcome } = await this.request("hello", this.enc.hello(name, void 0, options.ticket), false);
    this.setStatus(this.joinedValue ? "joined" : "welcomed");
    return welcome;
  }
  /**
   * Joins an instance by id (created when missing, unless
   * `createIfMissing: false`), or, without an id, wherever the server
   * places the player. Joining while in another instance moves the player.
   */
  async join(instanceId, options = {}) {
    this.requireStatus("join", "welcomed", "joined");
    if (instanceId !== void 0 && !INSTANCE_ID_PATTERN.test(instanceId)) {
      throw new RangeError(`instance id must be 1-64 bytes of [A-Za-z0-9_.-]: ${JSON.stringify(instanceId)}`);
    }
    const create = options.createIfMissing ?? true;
    let joined;
    try {
      joined = await this.request("join", this.enc.join(instanceId, create), false);
    } catch (e) {
      if (!(e instanceof ShardlineError) || e.code !== 32 /* WrongNode */ || instanceId === void 0) throw e;
      joined = await this.joinOnOwner(instanceId, create);
    }
    this.setStatus("joined");
    return joined;
  }
  /**
   * The instance runs on another node of the fleet (Error(WrongNode) named
   * it): connect there (`/play?instance=`), say Hello as a new player (with
   * a fresh ticket from `renewTicket`, if given) and join. Follows at most
   * MAX_REDIRECTS such answers.
   */
  async joinOnOwner(instanceId, create) {
    for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
      const owner = this.redirectUrl;
      this.redirectUrl = null;
      this.dropSocket("moving to the node that runs the instance");
      this.base = baseUrl(owner);
      this.joinedValue = null;
      await this.openSocket(playUrl(this.base, instanceId));
      const ticket = this.renewTicket ? await this.renewTicket() : void 0;
      try {
        await this.request("hello", this.enc.hello(this.nameValue ?? "", void 0, ticket), false);
        return await this.request("join", this.enc.join(instanceId, create), false);
      } catch (e) {
        if (!(e instanceof ShardlineError) || e.code !== 32 /* WrongNode */) throw e;
      }
    }
    throw new ShardlineError(`instance ${instanceId} moved more than ${MAX_REDIRECTS} times while joining`, 32 /* WrongNode */);
  }
  /** The owner of `instance` according to the first fleet node that knows (null: none does). */
  async routeInstance(instance) {
    for (const node of this.fleet) {
      const http = baseUrl(node).replace(/^ws/, "http");
      try {
        const res = await fetch(`${http}/v1/route?instance=${encodeURIComponent(instance)}`, {
          signal: AbortSignal.timeout(this.requestTimeoutMs)
        });
        if (res.ok) return (await res.json()).url;
      } catch {
      }
    }
    return null;
  }
  /** Closes the current socket without reporting a disconnect. */
  dropSocket(reason) {
    const s = this.sock;
    this.sock = null;
    this.stopTimers();
    if (s) abandon(s, 1e3, reason);
  }
  /** Leaves the instance; the connection stays and may join again. */
  leave() {
    this.requireStatus("leave", "joined");
    this.sendFrame(this.enc.leave());
    this.joinedValue = null;
    this.instanceWanted = null;
    this.stateValue = null;
    this.entitiesValue = [];
    this.worlds.clear();
    this.ackDue = 0;
    this.setStatus("welcomed");
  }
  /**
   * Sends the player's input for the next tick: axes in [-1, 1] (the server
   * clamps), buttons as the game's bit set. Returns its seq (compare with
   * `state.lastInputSeq` for prediction), or null when not in an instance
   * right now (e.g. while reconnecting): that input is not sent.
   * The server applies at most `welcome.limits.inputsPerTickMax` per tick.
   */
  sendInput(moveX, moveY, buttons = 0) {
    if (!Number.isFinite(moveX) || !Number.isFinite(moveY)) {
      throw new RangeError(`input axes must be finite numbers (got ${moveX}, ${moveY})`);
    }
    if (this.statusValue !== "joined" || !this.sock || this.sock.readyState !== OPEN) return null;
    this.seq = this.seq + 1 >>> 0;
    const ack = this.ackDue;
    this.ackDue = 0;
    this.sendFrame(this.enc.input(this.seq, moveX, moveY, buttons >>> 0, ack));
    return this.seq;
  }
  /**
   * Sends a game message (`Game::on_message` gets it at the next tick, in
   * order with this player's inputs): `kind` is the game's own (0–65535),
   * `body` at most `welcome.limits.messageBytesMax` bytes. Returns false
   * when not in an instance right now (e.g. while reconnecting): it is not
   * sent. The server takes at most `limits.messagesPerTickMax` per tick.
   */
  send(kind, body = new Uint8Array(0)) {
    if (!Number.isInteger(kind) || kind < 0 || kind > MESSAGE_KIND_MAX) {
      throw new RangeError(`message kind must be an integer in [0, ${MESSAGE_KIND_MAX}] (got ${kind})`);
    }
    if (!(body instanceof Uint8Array)) throw new TypeError("message body must be a Uint8Array");
    const max = this.welcomeValue?.limits.messageBytesMax ?? 0;
    if (max > 0 && body.length > max) throw new RangeError(`message body of ${body.length} bytes is over limits.messageBytesMax (${max})`);
    if (this.statusValue !== "joined" || !this.sock || this.sock.readyState !== OPEN) return false;
    return this.sendFrame(this.enc.message(kind, body));
  }
  /** Measures one round trip to the node, ms; also updates `rtt`. */
  ping() {
    if (!this.sock || this.statusValue !== "welcomed" && this.statusValue !== "joined") {
      return Promise.reject(new ShardlineError(`ping() while ${this.statusValue}`));
    }
    let t = this.now();
    while (this.pings.has(t)) t += 1e-3;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(t);
        reject(new ShardlineError(`no Pong within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pings.set(t, { resolve, reject, timer });
      this.sendFrame(this.enc.ping(t));
    });
  }
  /** Closes for good: no reconnect. Emits `closed`. */
  close() {
    if (this.statusValue === "closed" || this.statusValue === "idle") return;
    this.closing = true;
    this.wakeSleep?.();
    const s = this.sock;
    this.sock = null;
    this.stopTimers();
    if (s) {
      try {
        s.close(1e3, "client closed");
      } catch {
      }
    }
    const err = new ShardlineError("the client was closed", null, 1e3);
    this.settle(err);
    this.failPings(err);
    this.finalClose(1e3, "closed by the client");
  }
  // ------------------------------------------------------------ connection
  webSocketClass() {
    return this.WebSocketClass ?? defaultWebSocket();
  }
  /** Opens `url` as the current socket; bounded by requestTimeoutMs. */
  openSocket(url) {
    return new Promise((resolve, reject) => {
      let sock;
      try {
        sock = new (this.webSocketClass())(url);
      } catch (e) {
        reject(e);
        return;
      }
      sock.binaryType = "arraybuffer";
      this.sock = sock;
      let opened = false;
      const fail = (err) => {
        clearTimeout(timer);
        if (this.sock === sock) this.sock = null;
        reject(err);
      };
      const timer = setTimeout(() => {
        abandon(sock, 1e3, "open timed out");
        fail(new ShardlineError(`could not open ${url} within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      sock.onopen = () => {
        if (this.sock !== sock) return;
        opened = true;
        clearTimeout(timer);
        this.lastRecvAt = this.now();
        this.startTimers();
        resolve();
      };
      sock.onmessage = (ev) => {
        if (this.sock === sock) this.onFrame(sock, ev.data);
      };
      sock.onerror = () => {
      };
      sock.onclose = (ev) => {
        if (!opened) fail(new ShardlineError(`could not connect to ${url} (close ${ev.code})`, null, ev.code));
        else this.onSocketClose(sock, ev.code, ev.reason ?? "");
      };
    });
  }
  onSocketClose(sock, code, reason) {
    if (sock !== this.sock) return;
    this.sock = null;
    this.stopTimers();
    const err = new ShardlineError(`connection closed (${code}${reason ? `: ${reason}` : ""})`, null, code);
    this.settle(err);
    this.failPings(err);
    if (this.recovering || this.stopped()) return;
    const willReconnect = this.reconnectOpts !== null && this.welcomeValue !== null && !FINAL_CLOSE_CODES.has(code);
    this.emit("disconnected", { code, reason, willReconnect });
    if (willReconnect) void this.recover(code, true);
    else this.finalClose(code, reason);
  }
  /** close() was called, or the client closed for good: no loop may go on. */
  stopped() {
    return this.closing || this.statusValue === "closed";
  }
  /**
   * The server moved the seat to another node (Transfer) and is about to
   * close this connection with 1000: go there now with the resume token,
   * rather than treat that close as a drop. The new node becomes the base
   * URL for later reconnects.
   */
  onTransfer(sock, t) {
    let base = null;
    try {
      base = baseUrl(t.url);
    } catch {
    }
    if (base === null || !INSTANCE_ID_PATTERN.test(t.instanceId) || this.welcomeValue === null) {
      abandon(sock, 1002, "unusable Transfer");
      this.onSocketClose(sock, 1002, `unusable Transfer (before Welcome, or a bad URL or instance id): ${JSON.stringify(t)}`);
      return;
    }
    this.emit("transfer", t);
    if (this.stopped() || this.sock !== sock) return;
    this.sock = null;
    this.stopTimers();
    try {
      sock.close(1e3, "transferred");
    } catch {
    }
    const err = new ShardlineError(`the seat moved to ${t.instanceId} on ${base} (Transfer)`);
    this.settle(err);
    this.failPings(err);
    this.joinedValue = null;
    this.transfersInARow++;
    if (this.transfersInARow > MAX_REDIRECTS) {
      this.finalClose(1008, `moved by more than ${MAX_REDIRECTS} Transfers in a row, the last to ${t.instanceId} on ${base}`);
      return;
    }
    this.transferTarget = { base, instanceId: t.instanceId };
    if (!this.recovering) void this.recover(1e3, false);
  }
  /**
   * Takes the seat back: at once where a Transfer points, otherwise after a
   * backoff delay per attempt. Ends in `reconnected`, or in `closed` when an
   * answer says retrying cannot help or the attempts ran out.
   * `dropReported`: `disconnected` was emitted already.
   */
  async recover(dropCode, dropReported) {
    this.recovering = true;
    try {
      await this.recoverLoop(dropCode, dropReported);
    } finally {
      this.recovering = false;
    }
  }
  async recoverLoop(dropCode, dropReported) {
    const r = this.reconnectOpts;
    this.setStatus("reconnecting");
    let lastCode = dropCode;
    let lastError = "";
    let attempt = 0;
    for (; ; ) {
      const transfer = this.transferTarget;
      this.transferTarget = null;
      if (transfer) {
        this.base = transfer.base;
        this.instanceWanted = transfer.instanceId;
      } else {
        if (r === null || attempt >= r.maxAttempts) break;
        const delayMs = backoffDelayMs(attempt, r, this.random);
        attempt++;
        this.emit("reconnecting", { attempt, delayMs });
        await this.sleep(delayMs);
        if (this.stopped()) return;
      }
      try {
        const result = await this.reconnectOnce(transfer !== null);
        if (this.stopped()) return;
        if (this.transferTarget) continue;
        this.setStatus(this.joinedValue ? "joined" : "welcomed");
        this.emit("reconnected", result);
        return;
      } catch (e) {
        if (this.stopped()) return;
        if (this.transferTarget) continue;
        const s = this.sock;
        this.sock = null;
        this.stopTimers();
        if (s) abandon(s, 1e3, "reconnect attempt failed");
        const closeCode = e instanceof ShardlineError ? e.closeCode : null;
        const code = e instanceof ShardlineError ? e.code : null;
        lastError = e instanceof Error ? e.message : String(e);
        if (closeCode !== null) lastCode = closeCode;
        const ticketRenewable = code !== null && TICKET_ERROR_CODES.has(code) && this.renewTicket !== null;
        if (closeCode !== null && FINAL_CLOSE_CODES.has(closeCode) || code !== null && FINAL_ERROR_CODES.has(code) && !ticketRenewable) {
          this.finalClose(closeCode ?? 1008, lastError);
          return;
        }
        if (!dropReported) {
          dropReported = true;
          this.emit("disconnected", { code: lastCode, reason: lastError, willReconnect: r !== null && r.maxAttempts > 0 });
        }
      }
    }
    this.finalClose(lastCode, r === null ? lastError : `gave up after ${r.maxAttempts} reconnect attempts (last: ${lastError})`);
  }
  /**
   * One attempt: connect to the instance's owner, Hello with the token
   * (Welcome{resumed} + Joined: the seat is back), or, when the server
   * refuses the token, Hello as a new player (with a fresh ticket from
   * `renewTicket`, if given) and join the same instance. `seatReserved`: a
   * Transfer said the seat waits there, so Joined follows the Welcome.
   */
  async reconnectOnce(seatReserved) {
    const want = this.instanceWanted;
    const name = this.nameValue ?? "";
    const token = this.welcomeValue.resumeToken;
    let result;
    let resumed = false;
    try {
      for (let hop = 0; ; hop++) {
        try {
          await this.openSocket(playUrl(this.base, want));
        } catch (e) {
          const owner = want !== null ? await this.routeInstance(want) : null;
          if (owner === null || baseUrl(owner) === this.base) throw e;
          this.base = baseUrl(owner);
          await this.openSocket(playUrl(this.base, want));
        }
        try {
          result = await this.request("hello", this.enc.hello(name, token), seatReserved || this.joinedValue !== null);
          break;
        } catch (e) {
          if (!(e instanceof ShardlineError) || e.code !== 32 /* WrongNode */ || hop + 1 >= MAX_REDIRECTS) throw e;
          this.dropSocket("moving to the node that runs the instance");
          this.base = baseUrl(this.redirectUrl);
          this.redirectUrl = null;
        }
      }
      resumed = result.welcome.resumed;
    } catch (e) {
      if (!(e instanceof ShardlineError) || e.code !== 20 /* ResumeRefused */) throw e;
      this.joinedValue = null;
      const ticket = this.renewTicket ? await this.renewTicket() : void 0;
      if (this.closing || !this.sock) throw new ShardlineError("connection lost while renewing the join ticket");
      result = await this.request("hello", this.enc.hello(name, void 0, ticket), false);
    }
    let joined = result.joined ?? this.joinedValue;
    if (want !== null && joined === null) {
      joined = await this.request("join", this.enc.join(want, true), false);
    }
    return { resumed, welcome: result.welcome, joined };
  }
  finalClose(code, reason) {
    if (this.statusValue === "closed") return;
    this.stopTimers();
    this.setStatus("closed");
    this.emit("closed", { code, reason });
  }
  sleep(ms) {
    return new Promise((resolve) => {
      this.wakeSleep = () => {
        if (this.sleepTimer !== null) clearTimeout(this.sleepTimer);
        this.sleepTimer = null;
        this.wakeSleep = null;
        resolve();
      };
      this.sleepTimer = setTimeout(() => this.wakeSleep?.(), ms);
    });
  }
  startTimers() {
    this.stopTimers();
    if (this.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        if (this.statusValue === "welcomed" || this.statusValue === "joined") this.ping().catch(() => {
        });
      }, this.pingIntervalMs);
    }
    if (this.deadAfterMs > 0) {
      this.liveTimer = setInterval(() => this.checkLiveness(), Math.min(LIVENESS_CHECK_MS_MAX, this.deadAfterMs / 4));
    }
  }
  stopTimers() {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    if (this.liveTimer !== null) clearInterval(this.liveTimer);
    this.pingTimer = this.liveTimer = null;
  }
  /** Drops a connection that went silent while messages were due (a network that stopped without a FIN). */
  checkLiveness() {
    const s = this.sock;
    if (!s) return;
    const expecting = this.statusValue === "joined" || this.statusValue === "welcomed" && this.pingIntervalMs > 0;
    const silentMs = this.now() - this.lastRecvAt;
    if (!expecting || silentMs <= this.deadAfterMs) return;
    abandon(s, CLOSE_NO_TRAFFIC, "no traffic");
    this.onSocketClose(s, CLOSE_NO_TRAFFIC, `no message from the server for ${Math.round(silentMs)} ms`);
  }
  sendFrame(bytes) {
    const s = this.sock;
    if (!s || s.readyState !== OPEN) return false;
    s.send(bytes);
    return true;
  }
  // ------------------------------------------------------------ requests
  request(kind, bytes, expectJoined) {
    if (this.pending) {
      return Promise.reject(new ShardlineError(`${kind}() while a ${this.pending.kind}() awaits its answer`));
    }
    if (!this.sock) return Promise.reject(new ShardlineError(`${kind}() without a connection`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.settle(new ShardlineError(`no answer to ${kind} within ${this.requestTimeoutMs} ms`)),
        this.requestTimeoutMs
      );
      this.pending = { kind, expectJoined, welcome: null, resolve, reject, timer };
      this.sendFrame(bytes);
    });
  }
  settle(err, value) {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }
  failPings(err) {
    for (const w of this.pings.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.pings.clear();
  }
  requireStatus(what, ...allowed) {
    if (!allowed.includes(this.statusValue)) {
      throw new ShardlineError(`${what}() while ${this.statusValue} (needs ${allowed.join(" or ")})`);
    }
  }
  setStatus(s) {
    if (this.statusValue === s) return;
    this.statusValue = s;
    this.emit("status", s);
  }
  // ------------------------------------------------------------ messages
  onFrame(sock, data) {
    this.lastRecvAt = this.now();
    const bytes = messageBytes(data);
    if (!bytes) return;
    let msg;
    try {
      msg = decodeServerMessage(bytes);
    } catch (e) {
      abandon(sock, 1002, "undecodable frame");
      this.onSocketClose(sock, 1002, `undecodable server frame: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (msg?.type === "transfer") this.onTransfer(sock, msg.transfer);
    else if (msg?.type === "delta") this.onDelta(sock, msg.delta, bytes.length);
    else if (msg) this.onMessage(msg, bytes.length);
  }
  /**
   * Version 2: rebuilds the world of the delta's tick, emits it as `state`,
   * and acknowledges it (in an input sent by a `state` listener, or in an
   * Ack right after). A delta that cannot be applied drops the connection
   * (CLOSE_BAD_DELTA); the reconnect brings a full state.
   */
  onDelta(sock, d, frameBytes) {
    if (this.joinedValue === null) return;
    let world;
    try {
      world = this.worlds.apply(d);
    } catch (e) {
      if (!(e instanceof DeltaError)) throw e;
      this.emit("protocolError", { message: e.message });
      if (this.sock !== sock) return;
      abandon(sock, CLOSE_BAD_DELTA, "bad delta");
      this.onSocketClose(sock, CLOSE_BAD_DELTA, e.message);
      return;
    }
    const entities = [];
    for (const q of world.entities.values()) entities.push(toEntity(q));
    this.ackDue = d.tick;
    this.takeState({
      tick: d.tick,
      lastInputSeq: d.lastInputSeq,
      inputsApplied: d.inputsApplied,
      entities,
      custom: world.custom,
      baselineTick: d.baselineTick,
      frameBytes,
      entered: [],
      left: []
    });
    if (this.ackDue !== 0 && this.sock === sock) {
      this.sendFrame(this.enc.ack(this.ackDue));
      this.ackDue = 0;
    }
  }
  /** Fills in what entered and left since the last state, keeps `s` as the current state, emits it. */
  takeState(s) {
    const before = /* @__PURE__ */ new Set();
    for (const e of this.entitiesValue) before.add(e.id);
    for (const e of s.entities) {
      if (!before.delete(e.id)) s.entered.push(e.id);
    }
    for (const id of before) s.left.push(id);
    this.transfersInARow = 0;
    this.stateValue = s;
    this.entitiesValue = s.entities;
    this.tickValue = s.tick;
    this.emit("state", s);
  }
  onMessage(m, frameBytes) {
    const p = this.pending;
    switch (m.type) {
      case "welcome":
        this.welcomeValue = m.welcome;
        this.worlds.resize(Math.max(1, m.welcome.limits.deltaHistoryTicks));
        this.emit("welcome", m.welcome);
        if (p?.kind === "hello") {
          if (p.expectJoined && m.welcome.resumed) p.welcome = m.welcome;
          else this.settle(null, { welcome: m.welcome, joined: null });
        }
        break;
      case "joined":
        this.joinedValue = m.joined;
        this.instanceWanted = m.joined.instanceId;
        this.stateValue = null;
        this.entitiesValue = m.joined.entities;
        this.tickValue = m.joined.tick;
        this.worlds.clear();
        this.ackDue = 0;
        this.emit("joined", m.joined);
        if (p?.kind === "join") this.settle(null, m.joined);
        else if (p?.kind === "hello" && p.welcome) this.settle(null, { welcome: p.welcome, joined: m.joined });
        break;
      case "state":
        this.takeState({ ...m.state, baselineTick: 0, frameBytes, entered: [], left: [] });
        break;
      case "delta":
        break;
      // handled in onFrame, which knows the socket
      case "event":
        this.emit("message", m.event);
        break;
      case "playerJoined":
        this.emit("playerJoined", m.playerJoined);
        break;
      case "playerLeft":
        this.emit("playerLeft", m.playerLeft);
        break;
      case "pong": {
        const w = this.pings.get(m.pong.clientTime);
        if (!w) break;
        this.pings.delete(m.pong.clientTime);
        clearTimeout(w.timer);
        const sample = this.now() - m.pong.clientTime;
        this.rttLastValue = sample;
        this.rttSmoothed = this.rttSmoothed === null ? sample : this.rttSmoothed + (sample - this.rttSmoothed) * RTT_SMOOTHING;
        this.emit("rtt", sample);
        w.resolve(sample);
        break;
      }
      case "notice":
        this.emit("notice", m.notice);
        break;
      case "transfer":
        break;
      // handled in onFrame, which knows the socket
      case "error":
        if (m.error.code === 32 /* WrongNode */) this.redirectUrl = m.error.message;
        if (p && m.error.code !== 4 /* BadInput */) {
          this.settle(new ShardlineError(`${p.kind} refused: ${errorCodeName(m.error.code)}: ${m.error.message}`, m.error.code));
        } else {
          this.emit("serverError", m.error);
        }
        break;
    }
  }
};

// src/generated/shardline/protocol.ts
var protocol_exports = {};
__export(protocol_exports, {
  Ack: () => Ack,
  ClientBody: () => ClientBody,
  ClientMessage: () => ClientMessage,
  EntityPose: () => EntityPose,
  EntityState: () => EntityState,
  Error: () => Error2,
  ErrorCode: () => ErrorCode,
  GameEvent: () => GameEvent,
  Hello: () => Hello,
  Input: () => Input,
  Join: () => Join,
  Joined: () => Joined,
  Leave: () => Leave,
  LeaveReason: () => LeaveReason,
  Limits: () => Limits,
  Message: () => Message,
  Notice: () => Notice,
  Ping: () => Ping,
  PlayerJoined: () => PlayerJoined,
  PlayerLeft: () => PlayerLeft,
  Pong: () => Pong,
  ProtocolVersion: () => ProtocolVersion,
  ServerBody: () => ServerBody,
  ServerMessage: () => ServerMessage,
  StateDelta: () => StateDelta,
  StateUpdate: () => StateUpdate,
  Transfer: () => Transfer,
  Welcome: () => Welcome
});

// src/generated/shardline/protocol/protocol-version.ts
var ProtocolVersion = /* @__PURE__ */ ((ProtocolVersion2) => {
  ProtocolVersion2[ProtocolVersion2["V1"] = 1] = "V1";
  ProtocolVersion2[ProtocolVersion2["V2"] = 2] = "V2";
  return ProtocolVersion2;
})(ProtocolVersion || {});
export {
  CLOSE_BAD_DELTA,
  CLOSE_NO_TRAFFIC,
  CUSTOM_STATE_BYTES_MAX,
  DeltaError,
  EMPTY_WORLD,
  Emitter,
  Encoder,
  ErrorCode,
  FACING_STEPS,
  FINAL_CLOSE_CODES,
  INSTANCE_ID_PATTERN,
  LeaveReason,
  MESSAGE_KIND_MAX,
  PLAYER_NAME_BYTES_MAX,
  POSITION_SCALE,
  PROBE_DEFAULTS,
  PROTOCOL_VERSION,
  RECONNECT_DEFAULTS,
  ShardlineClient,
  ShardlineError,
  WorldHistory,
  applyDelta,
  backoffDelayMs,
  baseUrl,
  decodeServerMessage,
  echoUrl,
  errorCodeName,
  fastest,
  playUrl,
  probeRegions,
  protocol_exports as protocol,
  quantizeFacing,
  quantizePosition,
  toEntity
};
