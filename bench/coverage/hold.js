// Coverage program: node with objects, strings and a typed array.
const keep = [];
for (let i = 0; i < 200000; i++) keep.push({ a: i, b: 'x' + i });
const buf = new Float64Array(1 << 20).fill(1);
console.log('ready', keep.length, buf.length);
setInterval(() => keep.length, 3600000);
