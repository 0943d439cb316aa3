/** Resources only: tenfold.fatbin (the kernels, built by nvcc), build.properties and the kernels' resource table. */
package dev.tenfold.kernels;
